"""Helpers every benchmark module may use: which implementations exist, ratios measured side by
side, and the harness that runs workers in pinned processes.

The suite stands on its own, so that `asv run main~20..main` measures old commits with today's
harness (numpy's rule for its benchmarks): it imports only shmproc's public names, and a name a
commit lacks makes `implementation` raise NotImplementedError, which asv reports as a skip. The
queue, lock and Value workloads live here, in this folder, and nowhere else (asv_bench/compare_*.py
import them from here). PEP 371's workloads and the side-by-side timer have their one home in
shmproc/bench/ (the `python -m shmproc bench` tables): `checkout_bench` loads that folder from the
checkout these benchmarks belong to, never from the commit being measured.
"""
import importlib
import importlib.util
import multiprocessing
import os
import pathlib
import sys
import threading

# Processes for both libraries are launched the same way; only the object under test differs.
FORK = multiprocessing.get_context("fork")
LIBRARIES = ("shmproc", "multiprocessing")
JOIN_TIMEOUT = 60

_CHECKOUT_BENCH = pathlib.Path(__file__).resolve().parents[2] / "shmproc" / "bench"
_CHECKOUT_BENCH_PACKAGE = "_shmproc_checkout_bench"


def checkout_bench(module):
    """shmproc/bench/<module>.py as this checkout has it, whatever shmproc is installed. (Its
    modules import one another relatively and shmproc only by public names.)"""
    if _CHECKOUT_BENCH_PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            _CHECKOUT_BENCH_PACKAGE, _CHECKOUT_BENCH / "__init__.py",
            submodule_search_locations=[str(_CHECKOUT_BENCH)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[_CHECKOUT_BENCH_PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{_CHECKOUT_BENCH_PACKAGE}.{module}")


_timing = checkout_bench("timing")
interleaved, medians, per_call = _timing.interleaved, _timing.medians, _timing.per_call


def factories(name):
    """The module or context whose factories a benchmark calls: shmproc, a fork context, threading."""
    if name == "shmproc":
        import shmproc
        return shmproc
    if name == "multiprocessing":
        return FORK
    if name == "threading":
        return threading
    raise ValueError(f"unknown library {name!r}")


def implementation(library_name, attribute):
    """library(library_name).<attribute>, or NotImplementedError (asv: skipped) if it is missing."""
    found = getattr(factories(library_name), attribute, None)
    if found is None:
        raise NotImplementedError(f"{library_name} has no {attribute} in this version")
    return found


def side_by_side_ratio(numerator, denominator, repeat=5):
    """median(numerator()) / median(denominator()), the two zero-argument timers (each returning
    seconds) interleaved in one process; for track_* benchmarks with unit "ratio"."""
    result = medians(interleaved({"numerator": numerator, "denominator": denominator}, repeat))
    return result["numerator"] / result["denominator"]


# --- workers in processes, pinned to CPUs ---------------------------------------------------------
# Unpinned, the scheduler sometimes puts two of the processes on one CPU and sometimes not, and a
# run's figures jump between those two cases.

def placed(cpu, target, *args):
    """Run target(*args) pinned to one CPU (None: wherever the scheduler likes)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    return target(*args)


class pinned:
    """Pin this process to one CPU for the duration (None: no pinning)."""

    def __init__(self, cpu):
        self.cpu = cpu

    def __enter__(self):
        self.saved = os.sched_getaffinity(0)
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})

    def __exit__(self, *exc_info):
        os.sched_setaffinity(0, self.saved)


def placement(layout, processes):
    """CPUs for the parent then each child: "apart" spreads them round-robin over the cores,
    "together" puts all on one core, None leaves them to the scheduler."""
    cpus = sorted(os.sched_getaffinity(0))
    if layout == "apart":
        return [cpus[index % len(cpus)] for index in range(processes)]
    if layout == "together":
        return [cpus[0]] * processes
    return [None] * processes


class running:
    """Start processes; on leaving, join them (bounded) and fail loudly if one did not finish."""

    def __init__(self, processes):
        self.processes = processes

    def __enter__(self):
        for process in self.processes:
            process.start()

    def __exit__(self, *exc_info):
        for process in self.processes:
            process.join(JOIN_TIMEOUT)
        stuck = [process for process in self.processes if process.is_alive()]
        for process in stuck:
            process.kill()
            process.join()
        if stuck and exc_info[0] is None:
            raise RuntimeError(f"{len(stuck)} benchmark process(es) did not finish in {JOIN_TIMEOUT} s")
        failed = [process.exitcode for process in self.processes if process.exitcode]
        if failed and exc_info[0] is None:
            raise RuntimeError(f"benchmark process(es) failed with exit codes {failed}")
