"""Queues and pipes: shmproc against multiprocessing and faster-fifo, side by side in one run.

    python asv_bench/compare_queues.py [--repeat 5] [--quick] [--only TEXT]

Each workload runs its candidates interleaved (A B C, then B C A, ...) and prints medians of the
repeats: time per message (or round trip, or array), messages per second, and how many times faster
the shmproc reference of that workload is than each candidate. Every candidate's peer process is
forked with multiprocessing's fork context and held at a pipe until the timing starts. The
workloads are asv_bench/benchmarks/queues.py's, which asv runs as well.
"""
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.queues import (  # noqa: E402
    ARRAY_WARMUP,
    BATCH,
    CHANNELS,
    ROUND_TRIPS,
    SMALL_MESSAGES,
    SMALL_PAYLOADS,
    ndarray_one_way,
    one_way,
    round_trip,
    shared_ndarray_one_way,
)

from shmproc.bench.timing import comparison_arguments, format_seconds, format_table, interleaved, medians  # noqa: E402

ALL = list(CHANNELS)
QUEUES_ONLY = ["mp.Queue", "faster_fifo", "shmproc.Queue"]


def workloads(scale):
    small = max(2000, int(SMALL_MESSAGES * scale))
    trips = max(200, int(ROUND_TRIPS * scale))
    array_count = 1 if scale < 1 else 3
    rows = []
    for payload_name, payload in SMALL_PAYLOADS.items():
        rows.append((f"{payload_name}, 1 -> 1 process, {small} messages", "shmproc.Queue",
                     {name: functools.partial(one_way, name, payload, small) for name in ALL}))
        batched = {"mp.Queue": functools.partial(one_way, "mp.Queue", payload, small)}
        for name in ("faster_fifo", "shmproc.Queue"):
            batched[name + " many"] = functools.partial(one_way, name, payload, small, BATCH)
        rows.append((f"{payload_name}, put_many/get_many of {BATCH} (mp.Queue: one at a time)",
                     "shmproc.Queue many", batched))
    for placement, where in ((None, "unpinned"), ("apart", "pinned to two cores"),
                             ("together", "both pinned to one core")):
        rows.append((f"round trip, {trips} ping-pongs (queues: two of them), {where}", "shmproc.Queue",
                     {name: functools.partial(round_trip, name, trips, placement) for name in ALL}))
    array_channels = QUEUES_ONLY + ["mp.Pipe", "shmproc.Pipe"]
    rows.append((f"64 MB float64 ndarray, 1 -> 1 process, steady state (after {ARRAY_WARMUP} untimed arrays)",
                 "shmproc.Queue", {name: functools.partial(ndarray_one_way, name, 64 << 20, array_count)
                                   for name in array_channels}))
    rows.append(("64 MB float64 ndarray, 1 -> 1 process, the first one (cold shared memory)",
                 "shmproc.Queue", {name: functools.partial(ndarray_one_way, name, 64 << 20, 1, 0)
                                   for name in array_channels}))
    rows.append(("shmproc shared ndarray through shmproc.Queue, by size", "1 MB",
                 {label: functools.partial(shared_ndarray_one_way, nbytes)
                  for label, nbytes in (("1 MB", 1 << 20), ("64 MB", 64 << 20), ("1 GB", 1 << 30))}))
    return rows


def main(argv=None):
    args = comparison_arguments(__doc__, 5, argv)
    scale = 0.1 if args.quick else 1.0
    print(f"# {os.cpu_count()} cores, medians of {args.repeat} interleaved repeats")
    for title, reference, candidates in workloads(scale):
        if args.only.lower() not in title.lower():
            continue
        result = medians(interleaved(candidates, args.repeat))
        base = result[reference]
        table = [[name, format_seconds(seconds), f"{1 / seconds:,.0f}",
                  f"{seconds / base:.1f}x" if name != reference else "-"]
                 for name, seconds in sorted(result.items(), key=lambda item: item[1])]
        print(f"\n## {title}")
        print(format_table(["candidate", "time each", "per second", f"{reference} is faster by"], table),
              flush=True)


if __name__ == "__main__":
    main()
