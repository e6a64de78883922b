"""Shared Values and arrays, shmproc against multiprocessing, side by side.

    python asv_bench/compare_sharedctypes.py [--repeat 7] [--quick] [--only TEXT]

Rows in one process time a statement in a loop; "2 processes" rows fork two counting children (one
per core) for both libraries; hand-off rows send an array over a multiprocessing Pipe to a running
child, which unpickles it, touches it and answers. Every row runs its two candidates interleaved
and prints the medians of the repeats. "speed-up" is multiprocessing's time over shmproc's; the
target for the row (docs/sharedctypes.md), if it has one, is in the last column.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# OpenBLAS's idle threads spin in this process after numpy loads, taking CPU from the children.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from benchmarks.common import FORK  # noqa: E402
from benchmarks.ndarray import ArrayHandoff, pickled_size  # noqa: E402
from benchmarks.sharedctypes import counter_in_processes  # noqa: E402

import shmproc.ndarray  # noqa: E402
import shmproc.sharedctypes  # noqa: E402
from shmproc.bench.timing import (  # noqa: E402
    comparison_arguments,
    format_ratio,
    format_seconds,
    format_table,
    interleaved,
    medians,
    per_call,
)

LOCKED_INCREMENT = "with v.get_lock(): v.value += 1"

# (row, shmproc statement, multiprocessing statement, target speed-up or "")
ONE_PROCESS = [
    (LOCKED_INCREMENT, LOCKED_INCREMENT, LOCKED_INCREMENT, ""),
    ("with v: v.value += 1", "with v: v.value += 1", "with v: v.value += 1", ""),
    ("fetch_add(1) vs mp's locked += 1", "fetch_add(1)", LOCKED_INCREMENT, ">= 10"),
    ("v.fetch_add(1) vs mp's locked += 1", "v.fetch_add(1)", LOCKED_INCREMENT, ">= 10"),
    ("v.value (read)", "v.value", "v.value", ""),
    ("v.value = 1", "v.value = 1", "v.value = 1", ""),
    ("a[3] (Array('d', 10))", "a[3]", "a[3]", ""),
    ("a[3] = 1.5", "a[3] = 1.5", "a[3] = 1.5", ""),
    ("Value('i', 0) creation", "Value('i', 0)", "Value('i', 0)", ""),
]

SIZES_MB = (1, 16, 256)


def one_process_rows(number):
    namespaces = {}
    for name, library in (("shmproc", shmproc.sharedctypes), ("multiprocessing", FORK)):
        v = library.Value("i", 0)
        namespaces[name] = {"v": v, "a": library.Array("d", 10), "Value": library.Value}
        if name == "shmproc":
            namespaces[name]["fetch_add"] = v.fetch_add     # looked up once, as a tight loop would
    rows = []
    for row, ours, theirs, target in ONE_PROCESS:
        rows.append((row, target, {"shmproc": per_call(ours, namespaces["shmproc"], number),
                                   "multiprocessing": per_call(theirs, namespaces["multiprocessing"], number)}))
    return rows


def counter_rows(times):
    # (row, shmproc's loop, multiprocessing's loop, target)
    ways = [(f"2 processes x {times} {LOCKED_INCREMENT}", "locked += 1", "locked += 1", ">= 3"),
            (f"2 processes x {times} with v: v.value += 1", "with v: += 1", "with v: += 1", ""),
            (f"2 processes x {times} fetch_add(1) vs mp's locked += 1", "fetch_add(1)", "locked += 1", ">= 10")]
    return [(row, target, {"shmproc": functools.partial(counter_in_processes, shmproc.sharedctypes, ours,
                                                        2, times),
                           "multiprocessing": functools.partial(counter_in_processes, FORK, theirs, 2, times)})
            for row, ours, theirs, target in ways]


def handoff_rows(sizes_mb, handoffs):
    rows = []
    for megabytes in sizes_mb:
        plain = np.ones(megabytes << 20, dtype=np.uint8)
        shared = shmproc.ndarray.asshared(plain)
        row = f"hand a {megabytes} MB ndarray to a child ({pickled_size(shared)} B vs {pickled_size(plain)} B pickled)"
        candidates = {"shmproc": functools.partial(handoffs["shmproc"].seconds, shared),
                      "multiprocessing": functools.partial(handoffs["multiprocessing"].seconds, plain)}
        rows.append((row, "constant", candidates))
    return rows


def main(argv=None):
    args = comparison_arguments(__doc__, 7, argv, quick="a tenth of the work and small arrays, for a smoke test")
    scale = 0.1 if args.quick else 1.0
    number = max(1000, int(200_000 * scale))
    handoffs = {"shmproc": ArrayHandoff(), "multiprocessing": ArrayHandoff()}
    try:
        rows = one_process_rows(number) + counter_rows(max(1000, int(200_000 * scale)))
        rows += handoff_rows(SIZES_MB[:2] if args.quick else SIZES_MB, handoffs)
        rows = [row for row in rows if args.only.lower() in row[0].lower()]
        print(f"# {os.cpu_count()} cores, medians of {args.repeat} interleaved repeats; one-process rows "
              f"are per operation, the others per run")
        table = []
        for row, target, candidates in rows:
            result = medians(interleaved(candidates, args.repeat))
            shm, mp = result["shmproc"], result["multiprocessing"]
            table.append([row, format_seconds(shm), format_seconds(mp), format_ratio(mp, shm), target])
            print(f"  done: {row}", flush=True)
    finally:
        for handoff in handoffs.values():
            handoff.close()
    print(format_table(["operation", "shmproc", "multiprocessing", "speed-up", "target"], table))


if __name__ == "__main__":
    main()
