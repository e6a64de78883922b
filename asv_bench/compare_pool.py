"""shmproc.Pool and shmproc.futures.ProcessPoolExecutor against the standard library's, side by side.

    python asv_bench/compare_pool.py [--rounds 5] [--runs 1] [--rows map1,mapdefault,...]

2 workers, fork (the start-to-first-result row also spawn). Each row times both libraries in
this one process, alternating which goes first every round, and reports the medians and their
ratio (how many times faster shmproc is: above 1, shmproc wins). The pools are started once per
row, outside the timings, except in the start-to-first-result row. With --runs N each row is run
N times over (new pools each time): the figures are those of the run with the median ratio, and
the last column gives the median and the range of the N ratios.
"""
import argparse
import concurrent.futures
import contextlib
import io
import multiprocessing
import os
import statistics
import sys
import time

WORKERS = 2


def identity(x):
    return x


def first_element(array):
    return float(array[0])


def fresh_shared_array(i):
    import shmproc
    array = shmproc.zeros(2 << 20)          # 16 MB of float64
    array[0] = i
    return array


def fresh_numpy_array(i):
    import numpy
    array = numpy.zeros(2 << 20)
    array[0] = i
    return array


def filled_shared_array(i):
    import shmproc
    array = shmproc.empty(2 << 20)          # every page written: allocated on either side
    array.fill(i)
    return array


def filled_numpy_array(i):
    import numpy
    array = numpy.empty(2 << 20)
    array.fill(i)
    return array


# -- what is timed: each a function of an open pool/executor, returning seconds -----------------

def pool_map(count, chunksize, **options):
    def run(pool):
        started = time.perf_counter()
        result = pool.map(identity, range(count), chunksize, **options)
        elapsed = time.perf_counter() - started
        assert len(result) == count
        return elapsed
    return run


def executor_submit(count):
    def run(executor):
        started = time.perf_counter()
        futures = [executor.submit(identity, i) for i in range(count)]
        for future in futures:
            future.result()
        return time.perf_counter() - started
    return run


def executor_map(count):
    def run(executor):
        started = time.perf_counter()
        for _ in executor.map(identity, range(count), chunksize=1):
            pass
        return time.perf_counter() - started
    return run


def pool_apply(count):
    def run(pool):
        started = time.perf_counter()
        for i in range(count):
            pool.apply(identity, (i,))
        return (time.perf_counter() - started) / count
    return run


def map_over(func, items):
    def run(pool):
        started = time.perf_counter()
        results = pool.map(func, items, 1)
        elapsed = time.perf_counter() - started
        del results
        return elapsed
    return run


# -- the two libraries --------------------------------------------------------------------------

def pools(method="fork"):
    import shmproc
    return {"shmproc": lambda: shmproc.get_context(method).Pool(WORKERS),
            "multiprocessing": lambda: multiprocessing.get_context(method).Pool(WORKERS)}


def executors():
    import shmproc.futures
    fork = multiprocessing.get_context("fork")
    return {"shmproc": lambda: shmproc.futures.ProcessPoolExecutor(WORKERS, mp_context=fork),
            "multiprocessing": lambda: concurrent.futures.ProcessPoolExecutor(WORKERS,
                                                                                mp_context=fork)}


def side_by_side(makers, timers, rounds):
    """{name: median seconds}: each library's timer, alternating who goes first every round."""
    opened = {name: make() for name, make in makers.items()}
    try:
        timer = timers if isinstance(timers, dict) else {name: timers for name in opened}
        for name, pool in opened.items():      # warm: workers started, code paths taken once
            timer[name](pool)
        samples = {name: [] for name in opened}
        names = list(opened)
        for round_index in range(rounds):
            for name in (names if round_index % 2 == 0 else names[::-1]):
                samples[name].append(timer[name](opened[name]))
        return {name: statistics.median(values) for name, values in samples.items()}
    finally:
        for pool in opened.values():
            if hasattr(pool, "terminate"):
                pool.terminate()
                pool.join()
            else:
                pool.shutdown(wait=True, cancel_futures=True)


def start_to_first_result(method, rounds):
    samples = {"shmproc": [], "multiprocessing": []}
    makers = pools(method)
    names = list(makers)
    for round_index in range(rounds + 1):
        for name in (names if round_index % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            pool = makers[name]()
            pool.apply(abs, (-1,))
            elapsed = time.perf_counter() - started
            pool.terminate()
            pool.join()
            if round_index:            # the first round starts the fork server, imports...
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


# -- rows -----------------------------------------------------------------------------------------

def row_map1(rounds):
    n = 100_000
    t = side_by_side(pools(), pool_map(n, 1), rounds)
    return "map(identity, range(100k), chunksize=1)", "tasks/s", n / t["shmproc"], \
        n / t["multiprocessing"], ">= 5"


def row_mapdefault(rounds):
    n = 100_000
    t = side_by_side(pools(), pool_map(n, None), rounds)
    return "map(identity, range(100k)), default chunksize", "tasks/s", n / t["shmproc"], \
        n / t["multiprocessing"], ">= 1"


def row_submit(rounds):
    n = 20_000
    t = side_by_side(executors(), executor_submit(n), rounds)
    return "executor: 20k submit() then result()", "tasks/s", n / t["shmproc"], \
        n / t["multiprocessing"], ">= 10"


def row_executor_map(rounds):
    n = 20_000
    t = side_by_side(executors(), executor_map(n), rounds)
    return "executor: map(identity, range(20k), chunksize=1)", "tasks/s", n / t["shmproc"], \
        n / t["multiprocessing"], ">= 10"


def row_apply(rounds):
    t = side_by_side(pools(), pool_apply(300), rounds)
    return "apply() round trip", "us", t["shmproc"] * 1e6, t["multiprocessing"] * 1e6, \
        "shmproc lower"


def row_start(method):
    def row(rounds):
        t = start_to_first_result(method, max(3, rounds))
        return f"start to first result ({method})", "ms", t["shmproc"] * 1e3, \
            t["multiprocessing"] * 1e3, "shmproc <= mp"
    return row


def row_shared_argument(rounds):
    import numpy

    import shmproc
    shared = shmproc.zeros(8 << 20)           # 64 MB
    private = numpy.zeros(8 << 20)
    n_shm, n_mp = 1000, 10
    t = side_by_side(pools(), {"shmproc": map_over(first_element, [shared] * n_shm),
                               "multiprocessing": map_over(first_element, [private] * n_mp)},
                     rounds)
    return "1,000 tasks taking one 64 MB shared ndarray (mp: 10 tasks, a private copy each)", \
        "us/task", t["shmproc"] / n_shm * 1e6, t["multiprocessing"] / n_mp * 1e6, \
        "<= 50 us (shmproc)"


def row_fresh_result(rounds):
    n = 100
    t = side_by_side(pools(), {"shmproc": map_over(fresh_shared_array, range(n)),
                               "multiprocessing": map_over(fresh_numpy_array, range(n))},
                     rounds)
    return "100 tasks each returning a fresh 16 MB ndarray", "tasks/s", n / t["shmproc"], \
        n / t["multiprocessing"], ">= 8"


def row_filled_result(rounds):
    # The row above writes one element: its pages come only when touched, on both sides. Here
    # the worker writes all 16 MB, so both pay for every page.
    n = 100
    t = side_by_side(pools(), {"shmproc": map_over(filled_shared_array, range(n)),
                               "multiprocessing": map_over(filled_numpy_array, range(n))},
                     rounds)
    return "100 tasks each returning a fresh 16 MB ndarray, every element written", "tasks/s", \
        n / t["shmproc"], n / t["multiprocessing"], ">= 8"


def row_progress(rounds):
    import shmproc
    n = 100_000
    with contextlib.redirect_stderr(io.StringIO()):
        t = side_by_side({"plain": lambda: shmproc.Pool(WORKERS),
                          "progress": lambda: shmproc.Pool(WORKERS)},
                         {"plain": pool_map(n, 1), "progress": pool_map(n, 1, progress=True)},
                         rounds)
    return "map chunksize=1 with progress=True (vs without; shmproc only)", "tasks/s", \
        n / t["progress"], n / t["plain"], ">= 0.95"


ROWS = {
    "map1": row_map1,
    "mapdefault": row_mapdefault,
    "submit": row_submit,
    "executormap": row_executor_map,
    "apply": row_apply,
    "startfork": row_start("fork"),
    "startspawn": row_start("spawn"),
    "startforkserver": row_start("forkserver"),
    "sharedarg": row_shared_argument,
    "freshresult": row_fresh_result,
    "filledresult": row_filled_result,
    "progress": row_progress,
}


def compile_shmproc():
    """Write shmproc's bytecode, as pip does when it installs a package. Spawned workers import
    shmproc; in an editable checkout under PYTHONDONTWRITEBYTECODE (as on the test machine) each
    would otherwise compile its modules (~20 ms a worker), while the standard library's are
    compiled at install."""
    import compileall

    import shmproc
    compileall.compile_dir(os.path.dirname(shmproc.__file__), quiet=1)


def main():
    compile_shmproc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rows", default=",".join(ROWS))
    args = parser.parse_args()
    print(f"{'row':<80} {'unit':>8} {'shmproc':>12} {'stdlib':>12} {'ratio':>8}  target")
    for key in args.rows.split(","):
        runs = []
        try:
            for _ in range(args.runs):
                label, unit, ours, theirs, target = ROWS[key](args.rounds)
                lower_is_better = unit in ("us", "ms", "us/task")
                runs.append((theirs / ours if lower_is_better else ours / theirs, ours, theirs))
        except Exception as exc:           # a row that cannot run (yet) says why
            print(f"{key:<80} could not run: {type(exc).__name__}: {exc}")
            continue
        runs.sort()
        ratio, ours, theirs = runs[(len(runs) - 1) // 2]
        spread = (f"  over {len(runs)} runs: median {statistics.median(r[0] for r in runs):.2f}x, "
                  f"{runs[0][0]:.2f}x-{runs[-1][0]:.2f}x" if len(runs) > 1 else "")
        print(f"{label:<80} {unit:>8} {ours:>12,.1f} {theirs:>12,.1f} {ratio:>7.2f}x  {target}"
              f"{spread}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
