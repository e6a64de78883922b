"""joblib's Parallel on the "shmproc" backend against its default, loky, side by side.

    python asv_bench/compare_joblib.py [--tasks 100] [--mb 100] [--repeat 3] [--jobs 2]

The workload: ``--tasks`` calls, each taking the same ``--mb`` MB ndarray (a plain numpy array:
the backends decide how to ship it) and returning a small digest of it; the two backends run
alternately, each Parallel call timed whole (the pools are made by the call, as joblib does with
a plain ``Parallel(n_jobs)``), medians of ``--repeat``. The results must be identical.
"""
import argparse
import statistics
import time

import numpy as np


def digest(array, row):
    return float(array[row::997].sum())


def run(backend, array, tasks, jobs):
    import joblib
    started = time.perf_counter()
    with joblib.parallel_config(backend=backend, n_jobs=jobs):
        results = joblib.Parallel()(joblib.delayed(digest)(array, row) for row in range(tasks))
    return time.perf_counter() - started, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    import shmproc.joblib_backend  # noqa: F401  (registers "shmproc")
    array = np.random.default_rng(0).random((args.mb << 20) // 8)
    times = {"loky": [], "shmproc": []}
    outputs = {}
    run("loky", array[:1000], 4, args.jobs)          # start-up of both, untimed
    run("shmproc", array[:1000], 4, args.jobs)
    for round_index in range(args.repeat):
        order = ("loky", "shmproc") if round_index % 2 == 0 else ("shmproc", "loky")
        for name in order:
            elapsed, outputs[name] = run(name, array, args.tasks, args.jobs)
            times[name].append(elapsed)
    assert outputs["loky"] == outputs["shmproc"], "the backends disagree"
    loky, ours = statistics.median(times["loky"]), statistics.median(times["shmproc"])
    print(f"{args.tasks} tasks each taking the same {args.mb} MB ndarray, n_jobs={args.jobs}, "
          f"medians of {args.repeat}:")
    print(f"  loky     {loky:8.3f} s")
    print(f"  shmproc  {ours:8.3f} s   x{loky / ours:.1f} faster, results identical")


if __name__ == "__main__":
    main()
