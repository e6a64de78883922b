"""Managers, shmproc against multiprocessing, side by side.

    python asv_bench/compare_managers.py [--repeat 7] [--quick] [--only TEXT]

One-client rows time a statement on a manager object in this process (per call); the "clients"
rows fork 1 or 4 processes that each do d[k] = v and d[k] on one manager dict (per run); the
ndarray rows store a shmproc shared ndarray in a shmproc manager's Namespace and have a running
child read it (1 KB against 64 MB: the same library, so "speed-up" is the small one's time over the
big one's, ~1 when size does not matter). Every row runs its candidates interleaved and prints the
medians of the repeats. "speed-up" is multiprocessing's time over shmproc's.
"""
import functools
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys

import numpy as np

import shmproc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmarks.manager_workloads import (  # noqa: E402
    ONE_CLIENT,
    NamespaceArrayReader,
    dict_from_clients,
    shared_objects,
    start_manager,
)

from shmproc.bench.timing import (  # noqa: E402
    comparison_arguments,
    format_ratio,
    format_seconds,
    format_table,
    interleaved,
    medians,
    per_call,
)

LIBRARIES = ("shmproc", "multiprocessing")


def main(argv=None):
    args = comparison_arguments(__doc__, 7, argv)
    scale = 0.1 if args.quick else 1.0
    number = max(300, int(5000 * scale))
    count = max(200, int(3000 * scale))
    managers = {name: start_manager(name) for name in LIBRARIES}
    reader = None
    try:
        objects = {name: shared_objects(managers[name]) for name in LIBRARIES}
        rows = [(row, target, {name: per_call(statement, objects[name], number) for name in LIBRARIES})
                for row, statement, target in ONE_CLIENT]
        for clients in (1, 4):
            rows.append((f"{clients} client process(es) x {count} (d[k] = v; d[k])", ">= 5",
                         {name: functools.partial(dict_from_clients, objects[name]["d"], clients, count)
                          for name in LIBRARIES}))
        ns = managers["shmproc"].Namespace()
        reader = NamespaceArrayReader(ns)
        small = shmproc.asshared(np.ones(1 << 10, dtype=np.uint8))
        big = shmproc.asshared(np.ones(64 << 20, dtype=np.uint8))
        ndarray_row = ("store + read in a child: shmproc ndarray in a Namespace, 64 MB vs 1 KB", "~1",
                       {"shmproc": functools.partial(reader.seconds, ns, big),
                        "multiprocessing": functools.partial(reader.seconds, ns, small)})
        rows.append(ndarray_row)
        rows = [row for row in rows if args.only.lower() in row[0].lower()]
        print(f"# {os.cpu_count()} cores, medians of {args.repeat} interleaved repeats; one-client rows are "
              f"per call, the others per run. In the ndarray row the 'shmproc' column is the 64 MB array "
              f"and the 'multiprocessing' column the 1 KB one, both through a shmproc manager.")
        table = []
        for row, target, candidates in rows:
            for name in LIBRARIES:
                objects[name]["lst"] and len(objects[name]["lst"]) > 100_000 and objects[name]["lst"][:0]
            result = medians(interleaved(candidates, args.repeat))
            shm, mp = result["shmproc"], result["multiprocessing"]
            table.append([row, format_seconds(shm), format_seconds(mp), format_ratio(mp, shm), target])
            print(f"  done: {row}", flush=True)
    finally:
        if reader is not None:
            reader.close()
        for manager in managers.values():
            manager.shutdown()
    print(format_table(["operation", "shmproc", "multiprocessing", "speed-up", "target"], table))


if __name__ == "__main__":
    main()
