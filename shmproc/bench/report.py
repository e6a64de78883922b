"""The tables `python -m shmproc bench` prints, its closing summary, and its JSON file."""
import json
import os
import platform
import statistics
import sys

from .timing import format_ratio, format_seconds, format_table
from .workloads import WORKLOADS

__all__ = ["format_workload", "summary", "write_json"]

# Within this much of 1, a ratio is noise on a shared 2-core machine, not a win or a loss.
TIE_BAND = 0.05


def median_or_none(values):
    return statistics.median(values) if values else None


def table_rows(samples):
    """[(workers, {mode: median seconds or None})] in the order measured."""
    return [(workers, {mode: median_or_none(values) for mode, values in by_mode.items()})
            for workers, by_mode in samples.items()]


def format_workload(name, samples, skipped, size):
    workload = WORKLOADS[name]
    rows = []
    for workers, medians in table_rows(samples):
        shm, mp = medians.get("shmproc"), medians.get("multiprocessing")
        rows.append([str(workers)] + [format_seconds(medians.get(mode))
                                      for mode in ("serial", "threads", "multiprocessing", "shmproc")]
                    + [format_ratio(shm, mp)])
    header = ["workers", "serial", "threads", "multiprocessing", "shmproc", "shmproc/mp"]
    lines = [f"{workload.describe(size)} ({name}): {workload.measures}", format_table(header, rows)]
    for mode, reason in skipped.items():
        lines.append(f"  {mode}: skipped, {reason}")
    return "\n".join(lines)


def summary(results):
    """One line: which rows shmproc wins and loses against multiprocessing."""
    wins, losses, ties = [], [], []
    for name, (samples, _skipped) in results.items():
        for workers, medians in table_rows(samples):
            shm, mp = medians.get("shmproc"), medians.get("multiprocessing")
            if shm is None or mp is None or mp == 0:
                continue
            ratio = shm / mp
            label = f"{name} x{workers} ({ratio:.2f})"
            if ratio < 1 - TIE_BAND:
                wins.append(label)
            elif ratio > 1 + TIE_BAND:
                losses.append(label)
            else:
                ties.append(label)
    compared = len(wins) + len(losses) + len(ties)
    if compared == 0:
        return "summary: no row has both a multiprocessing and a shmproc figure to compare"
    parts = [f"summary: shmproc faster than multiprocessing in {len(wins)} of {compared} rows"]
    if wins:
        parts.append("wins: " + ", ".join(wins))
    if losses:
        parts.append("loses: " + ", ".join(losses))
    if ties:
        parts.append(f"within ±{TIE_BAND:.0%}: " + ", ".join(ties))
    return "; ".join(parts)


def machine():
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def write_json(path, results, settings):
    document = {"machine": machine(), "settings": settings, "workloads": {}}
    for name, (samples, skipped) in results.items():
        document["workloads"][name] = {
            "skipped": skipped,
            "rows": [{"workers": workers, "mode": mode, "seconds": values,
                      "median": median_or_none(values)}
                     for workers, by_mode in samples.items() for mode, values in by_mode.items()],
        }
    with open(path, "w") as out:
        json.dump(document, out, indent=2)
        out.write("\n")
