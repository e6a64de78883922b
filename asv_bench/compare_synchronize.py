"""Synchronization primitives, shmproc against multiprocessing and threading, side by side.

    python asv_bench/compare_synchronize.py [--repeat 7] [--quick]

Uncontended rows time one call pattern in a loop in this process. Cross-process rows (barrier
rounds, condition ping-pong, a contended lock) fork real processes with
multiprocessing.get_context("fork") for both libraries, so only the primitive differs. Every row runs
its candidates interleaved and prints medians of the repeats; the ratio columns are time ratios
(below 1: shmproc is faster).
"""
import functools
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.common import FORK  # noqa: E402
from benchmarks.synchronize import barrier_round, condition_ping_pong, contended_lock  # noqa: E402

import shmproc  # noqa: E402
from shmproc.bench.timing import (  # noqa: E402
    comparison_arguments,
    format_ratio,
    format_seconds,
    format_table,
    interleaved,
    medians,
    per_call,
)

LIBRARIES = {"shmproc": shmproc, "multiprocessing": FORK, "threading": threading}


# --- uncontended: one process, one thread ---------------------------------------------------------

UNCONTENDED = [
    # (row, factory attribute, constructor arguments, statement on `obj`)
    ("Lock acquire(); release()", "Lock", (), "acquire(); release()"),
    ("Lock with", "Lock", (), "with obj: pass"),
    ("RLock acquire(); release()", "RLock", (), "acquire(); release()"),
    ("RLock with", "RLock", (), "with obj: pass"),
    ("Semaphore acquire(); release()", "Semaphore", (1,), "acquire(); release()"),
    ("Event set(); clear()", "Event", (), "set(); clear()"),
    ("Event is_set()", "Event", (), "is_set()"),
]


def uncontended_candidates(attribute, arguments, statement, number):
    candidates = {}
    for name, library in LIBRARIES.items():
        obj = getattr(library, attribute)(*arguments)
        # Bound methods are looked up once, as a tight loop in user code would.
        namespace = {"obj": obj}
        for method in ("acquire", "release", "set", "clear", "is_set"):
            if hasattr(obj, method):
                namespace[method] = getattr(obj, method)
        candidates[name] = per_call(statement, namespace, number)
    return candidates


def cross_process_rows(scale):
    rounds = max(50, int(2000 * scale))
    iterations = max(500, int(20000 * scale))
    cases = [
        # Two processes on two cores can hand off by spinning; on one core they must switch.
        ("Barrier round, 2 processes on 2 cores", barrier_round, (2, rounds, "apart")),
        ("Barrier round, 2 processes on 1 core", barrier_round, (2, rounds, "together")),
        ("Barrier round, 3 processes on 2 cores", barrier_round, (3, rounds, "apart")),
        ("Barrier round, 3 processes, unpinned", barrier_round, (3, rounds, None)),
        ("Condition ping-pong, 2 processes on 2 cores", condition_ping_pong, (rounds, "apart")),
        ("Condition ping-pong, 2 processes on 1 core", condition_ping_pong, (rounds, "together")),
        ("Lock contended, 2 processes on 2 cores", contended_lock, (2, iterations, "apart")),
    ]
    libraries = {"shmproc": shmproc, "multiprocessing": FORK}
    return [(row, {name: functools.partial(measure, library, *arguments) for name, library in libraries.items()})
            for row, measure, arguments in cases]


def main(argv=None):
    args = comparison_arguments(__doc__, 7, argv)
    scale = 0.1 if args.quick else 1.0
    number = max(1000, int(200_000 * scale))

    rows = [(row, uncontended_candidates(attribute, arguments, statement, number))
            for row, attribute, arguments, statement in UNCONTENDED]
    rows += cross_process_rows(scale)
    rows = [(row, candidates) for row, candidates in rows if args.only.lower() in row.lower()]

    print(f"# {os.cpu_count()} cores, medians of {args.repeat} interleaved repeats, time per operation")
    table = []
    for row, candidates in rows:
        result = medians(interleaved(candidates, args.repeat))
        shm, mp, th = result.get("shmproc"), result.get("multiprocessing"), result.get("threading")
        table.append([row, format_seconds(shm), format_seconds(mp), format_seconds(th),
                      format_ratio(shm, mp), format_ratio(shm, th), format_ratio(mp, shm)])
        print(f"  done: {row}", flush=True)
    print(format_table(["operation", "shmproc", "multiprocessing", "threading",
                        "shmproc/mp", "shmproc/threading", "speed-up vs mp"], table))


if __name__ == "__main__":
    main()
