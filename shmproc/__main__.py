"""python -m shmproc bench: PEP 371's tables on this machine, shmproc beside multiprocessing.

Each workload runs N times serially, in N threads, in N multiprocessing processes and in N shmproc
processes; the figures are medians of interleaved repeats, the last column is shmproc's time over
multiprocessing's (below 1: shmproc is faster).
"""
import argparse
import os
import sys
from typing import Any

from shmproc.bench import progress, report, runner
from shmproc.bench.workloads import WORKLOADS

# Both use PEP 371's work sizes, so the tables read against the PEP's; the long version only takes
# more repeats. (The asv suite uses the smaller "short" sizes: it runs every commit.)
DEFAULT: dict[str, Any] = {"workers": [1, 2, 4, 8], "repeat": 3, "size": "full"}
FULL: dict[str, Any] = {"workers": [1, 2, 4, 8], "repeat": 11, "size": "full"}


def worker_counts(text):
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts must be 1 or more")
    return counts


def workload_names(text):
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or text!r}; choose from {', '.join(WORKLOADS)}")
    return names


def parser():
    made = argparse.ArgumentParser(prog="python -m shmproc", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = made.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="run PEP 371's benchmark tables (about a minute)",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--workloads", type=workload_names, default=list(WORKLOADS),
                       help=f"comma-separated, from: {', '.join(WORKLOADS)} (default: all)")
    bench.add_argument("--workers", type=worker_counts, default=None,
                       help="comma-separated worker counts (default: 1,2,4,8)")
    bench.add_argument("--repeat", type=int, default=None,
                       help="repeats per cell, median reported (default: 3, --full: 11)")
    bench.add_argument("--full", action="store_true",
                       help="11 repeats instead of 3 (about four minutes)")
    bench.add_argument("--start-method", default=runner.DEFAULT_START_METHOD,
                       choices=["fork", "spawn", "forkserver"],
                       help="start method of both process backends (default: fork)")
    bench.add_argument("--json", metavar="PATH", help="also save every sample as JSON")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return made


def bench(args):
    preset = FULL if args.full else DEFAULT
    workers = args.workers or preset["workers"]
    repeat = args.repeat or preset["repeat"]
    if repeat < 1:
        raise SystemExit("--repeat must be 1 or more")
    total = len(args.workloads) * len(workers) * repeat * len(runner.MODES)
    print(f"PEP 371's workloads on {os.cpu_count()} CPUs ({preset['size']} sizes, median of {repeat},"
          f" start method {args.start_method}); times are wall clock for all N workers", flush=True)
    if max(workers) > (os.cpu_count() or 1):
        print(f"rows with more workers than the {os.cpu_count()} CPUs are oversubscribed", flush=True)
    bar = progress.progress_bar(total, enabled=not args.no_progress)
    results = {}
    try:
        for name in args.workloads:
            samples, skipped = runner.measure_table(
                name, workers, repeat, size=preset["size"], start_method=args.start_method,
                on_sample=bar.update)
            results[name] = (samples, skipped)
            # Skipped modes never report a sample: move the bar past them.
            for _ in range(len(skipped) * len(workers) * repeat):
                bar.update(f"{name} (skipped)")
    finally:
        bar.close()
    for name, (samples, skipped) in results.items():
        print()
        print(report.format_workload(name, samples, skipped, preset["size"]))
    print()
    print(report.summary(results))
    if args.json:
        report.write_json(args.json, results, {"workers": workers, "repeat": repeat,
                                               "size": preset["size"], "start_method": args.start_method})
        print(f"samples saved to {args.json}")
    return 0


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "bench":
        return bench(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
