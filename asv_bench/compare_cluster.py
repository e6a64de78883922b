"""shmproc's Pool on a Dask cluster against Dask itself, side by side in one run.

    python asv_bench/compare_cluster.py [--tasks 100000] [--repeat 3] [--mb 256]

One LocalCluster of 2 worker processes (1 thread each) on 127.0.0.1, shared by every row:
- tiny tasks: ``client.map(f, range(n))`` + ``client.gather`` against
  ``Pool(cluster=client).map(f, range(n))`` (automatic batching), alternating, ``--repeat`` times;
- a shmproc shared ndarray of ``--mb`` MB handed to a task: the time ``apply_async`` takes to
  return (the dispatch: placing the array on every worker), and the round trip to a result,
  against ``client.submit(f, plain copy)`` of the same array.
Medians; ratios are what travel to other machines.
"""
import argparse
import statistics
import time

import numpy as np


def identity(x):
    return x


def first_element(array):
    return float(array.flat[0])


def dask_map(client, n):
    started = time.perf_counter()
    client.gather(client.map(identity, range(n), pure=False))
    return time.perf_counter() - started


def pool_map(pool, n):
    started = time.perf_counter()
    result = pool.map(identity, range(n))
    elapsed = time.perf_counter() - started
    assert result[-1] == n - 1
    return elapsed


def array_rows(client, pool, megabytes, repeat):
    import shmproc
    shared = shmproc.zeros(megabytes << 20, dtype=np.uint8)
    plain = np.zeros(megabytes << 20, dtype=np.uint8)
    pool.apply(first_element, (shared[:16],))        # the one-time probe of each worker
    dispatch, round_trip, dask_round_trip = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        result = pool.apply_async(first_element, (shared,))
        dispatch.append(time.perf_counter() - started)
        result.get()
        round_trip.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.submit(first_element, plain, pure=False).result()
        dask_round_trip.append(time.perf_counter() - started)
    return statistics.median(dispatch), statistics.median(round_trip), \
        statistics.median(dask_round_trip)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mb", type=int, default=256)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from shmproc.pool import Pool
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pool = Pool(cluster=client)
        pool.map(identity, range(1000))
        client.gather(client.map(identity, range(100), pure=False))
        times = {"dask": [], "shmproc": []}
        for round_index in range(args.repeat):
            order = ("dask", "shmproc") if round_index % 2 == 0 else ("shmproc", "dask")
            for name in order:
                runner = dask_map if name == "dask" else pool_map
                times[name].append(runner(client if name == "dask" else pool, args.tasks))
        dask_rate = args.tasks / statistics.median(times["dask"])
        pool_rate = args.tasks / statistics.median(times["shmproc"])
        print(f"{args.tasks} tiny tasks, 2 workers, medians of {args.repeat}:")
        print(f"  client.map + gather          {dask_rate:>12,.0f} tasks/s")
        print(f"  Pool(cluster=client).map     {pool_rate:>12,.0f} tasks/s   "
              f"x{pool_rate / dask_rate:.1f}")
        dispatch, round_trip, dask_round_trip = array_rows(client, pool, args.mb, args.repeat)
        print(f"a {args.mb} MB array to one task, medians of {args.repeat}:")
        print(f"  shmproc shared array: apply_async returns in {dispatch * 1e3:.2f} ms, "
              f"result in {round_trip * 1e3:.1f} ms")
        print(f"  plain ndarray through client.submit: result in {dask_round_trip * 1e3:.1f} ms"
              f"   x{dask_round_trip / round_trip:.1f}")
        pool.terminate()


if __name__ == "__main__":
    main()
