"""Process pools and executors: shmproc's against the standard library's, 2 workers, fork.

Public API only (shmproc.Pool, shmproc.futures.ProcessPoolExecutor, shmproc.zeros), so the suite
runs against older commits: a name a commit lacks makes setup raise NotImplementedError (a skip).
`asv_bench/compare_pool.py` prints the same rows side by side with their ratios (docs/pool.md).
"""
import concurrent.futures
import multiprocessing
import time

WORKERS = 2
IMPLEMENTATIONS = ["multiprocessing", "shmproc"]
FORK = multiprocessing.get_context("fork")


def make_pool(implementation, start_method="fork"):
    if implementation == "multiprocessing":
        return multiprocessing.get_context(start_method).Pool(WORKERS)
    import shmproc
    return shmproc.get_context(start_method).Pool(WORKERS)


def make_executor(implementation):
    if implementation == "multiprocessing":
        return concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=FORK)
    try:
        from shmproc.futures import ProcessPoolExecutor
    except ImportError:
        raise NotImplementedError("shmproc.futures is not available in this version") from None
    return ProcessPoolExecutor(WORKERS, mp_context=FORK)


def close(pool):
    pool.terminate()
    pool.join()


def identity(x):
    return x


def first_element(array):
    return float(array[0])


def fresh_array(implementation):
    def make(i):
        if implementation == "shmproc":
            import shmproc
            array = shmproc.zeros(2 << 20)      # 16 MB, shared: returned as a handle
        else:
            import numpy
            array = numpy.zeros(2 << 20)        # 16 MB, pickled through the pipe
        array[0] = i
        return array
    return make


def fresh_shared_array(i):
    return fresh_array("shmproc")(i)


def fresh_numpy_array(i):
    return fresh_array("multiprocessing")(i)


class PoolMap:
    """Pool.map(identity, range(20k)) with chunksize 1 and the default."""
    params = (IMPLEMENTATIONS, [1, None])
    param_names = ["implementation", "chunksize"]
    timeout = 300

    def setup(self, implementation, chunksize):
        self.pool = make_pool(implementation)
        self.pool.map(identity, range(100))

    def teardown(self, implementation, chunksize):
        close(self.pool)

    def time_map_20k_tiny_tasks(self, implementation, chunksize):
        self.pool.map(identity, range(20_000), chunksize)


class PerImplementation:
    """Benchmarks run once per implementation (no timing of their own)."""
    params = IMPLEMENTATIONS
    param_names = ["implementation"]
    timeout = 300


class PoolApply(PerImplementation):
    """One apply() round trip."""

    def setup(self, implementation):
        self.pool = make_pool(implementation)
        self.pool.apply(identity, (1,))

    def teardown(self, implementation):
        close(self.pool)

    def time_apply(self, implementation):
        self.pool.apply(identity, (1,))


class PoolStart:
    """From Pool() to the first result of apply(), per start method."""
    params = (IMPLEMENTATIONS, ["fork", "spawn", "forkserver"])
    param_names = ["implementation", "start_method"]
    timeout = 300
    number = 1
    repeat = 5

    def setup(self, implementation, start_method):
        close(make_pool(implementation, start_method))   # imports, fork server: not timed

    def time_start_to_first_result(self, implementation, start_method):
        pool = make_pool(implementation, start_method)
        pool.apply(abs, (-1,))
        self.started = pool

    def teardown(self, implementation, start_method):
        started = getattr(self, "started", None)
        if started is not None:
            close(started)


class ExecutorSubmit(PerImplementation):
    """20k submit() then result() of each, and map(chunksize=1) over 20k items."""

    def setup(self, implementation):
        self.executor = make_executor(implementation)
        list(self.executor.map(identity, range(100)))

    def teardown(self, implementation):
        self.executor.shutdown(wait=True, cancel_futures=True)

    def time_submit_then_result_20k(self, implementation):
        futures = [self.executor.submit(identity, i) for i in range(20_000)]
        for future in futures:
            future.result()

    def time_map_20k_chunksize_1(self, implementation):
        for _ in self.executor.map(identity, range(20_000), chunksize=1):
            pass


class SharedArrayArgument:
    """1,000 tasks that each take the same 64 MB shared ndarray (it goes as a handle)."""
    timeout = 300

    def setup(self):
        try:
            import shmproc
            self.array = shmproc.zeros(8 << 20)
            self.pool = shmproc.Pool(WORKERS)
        except (ImportError, AttributeError):
            raise NotImplementedError("shmproc.zeros or shmproc.Pool is missing") from None
        self.pool.map(first_element, [self.array] * 10, 1)

    def teardown(self):
        close(self.pool)

    def time_1000_tasks_taking_a_64MB_shared_array(self):
        self.pool.map(first_element, [self.array] * 1000, 1)


class FreshArrayResult(PerImplementation):
    """Tasks that each return a fresh 16 MB ndarray (shmproc: shared, by handle). 20 of them
    here (the standard library's take ~0.1 s each); compare_pool.py runs the 100 of the target."""

    def setup(self, implementation):
        self.pool = make_pool(implementation)
        self.make = fresh_shared_array if implementation == "shmproc" else fresh_numpy_array
        try:
            self.pool.map(self.make, range(2), 1)
        except Exception as exc:
            close(self.pool)
            raise NotImplementedError(f"fresh arrays cannot come back: {exc!r}") from None

    def teardown(self, implementation):
        close(self.pool)

    def time_20_fresh_16MB_results(self, implementation):
        self.pool.map(self.make, range(20), 1)


class MapRatio:
    """shmproc's tasks/s over multiprocessing's, map(chunksize=1), measured side by side."""
    unit = "ratio"
    timeout = 300

    def setup(self):
        try:
            self.pools = {name: make_pool(name) for name in IMPLEMENTATIONS}
        except (ImportError, AttributeError):
            raise NotImplementedError("shmproc.Pool is missing") from None

    def teardown(self):
        for pool in self.pools.values():
            close(pool)

    def track_map_chunksize_1_speedup(self):
        seconds = {name: [] for name in self.pools}
        for round_index in range(3):
            order = IMPLEMENTATIONS if round_index % 2 == 0 else IMPLEMENTATIONS[::-1]
            for name in order:
                started = time.perf_counter()
                self.pools[name].map(identity, range(10_000), 1)
                seconds[name].append(time.perf_counter() - started)
        return sorted(seconds["multiprocessing"])[1] / sorted(seconds["shmproc"])[1]
