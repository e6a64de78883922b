"""shmproc's Pool on a Dask LocalCluster (2 worker processes) against Dask itself, and joblib's
"shmproc" backend against loky; ratios measured side by side in one process.
`asv_bench/compare_cluster.py` and `asv_bench/compare_joblib.py` print the same figures without asv.
Public names only; a commit (or an environment) without them is skipped.
"""
import time

import numpy as np

# Small enough for the test suite's quick pass over every benchmark (Dask runs ~0.5-3k tasks/s
# here); compare_cluster.py measures 100,000, the size docs/cluster.md reports.
TASKS = 3_000
JOBLIB_TASKS = 100
JOBLIB_MB = 20


def _needs(module):
    try:
        return __import__(module)
    except ImportError:
        raise NotImplementedError(f"{module} is not installed (pip install \"shmproc[dask]\")") \
            from None


class ClusterPool:
    timeout = 600
    repeat = 1
    number = 1

    def setup(self):
        distributed = _needs("distributed")
        import shmproc
        self.cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                                processes=True, host="127.0.0.1",
                                                dashboard_address=None)
        self.client = distributed.Client(self.cluster)
        try:
            self.pool = shmproc.Pool(cluster=self.client)
        except (TypeError, ImportError):
            self.teardown()
            raise NotImplementedError("this shmproc has no Pool(cluster=...)") from None
        self.pool.map(abs, range(1000))
        self.client.gather(self.client.map(abs, range(100), pure=False))

    def teardown(self):
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.terminate()
        self.client.close()
        self.cluster.close()

    def track_map_speedup_over_client_map(self):
        """Pool(cluster=client).map(f, range(n)) tasks/s over client.map + gather's."""
        times = {"dask": [], "shmproc": []}
        for round_index in range(3):
            for name in (("dask", "shmproc") if round_index % 2 == 0 else ("shmproc", "dask")):
                started = time.perf_counter()
                if name == "dask":
                    self.client.gather(self.client.map(abs, range(TASKS), pure=False))
                else:
                    self.pool.map(abs, range(TASKS))
                times[name].append(time.perf_counter() - started)
        return sorted(times["dask"])[1] / sorted(times["shmproc"])[1]

    track_map_speedup_over_client_map.unit = "ratio"

    def track_dispatch_256mb_shared_array(self):
        """Seconds apply_async takes to hand a 256 MB shared array to a task."""
        import shmproc
        array = shmproc.zeros(256 << 20, dtype=np.uint8)
        self.pool.apply(len, (array[:16],))
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            result = self.pool.apply_async(len, (array,))
            samples.append(time.perf_counter() - started)
            result.get()
        return sorted(samples)[2]

    track_dispatch_256mb_shared_array.unit = "seconds"


class JoblibBackend:
    timeout = 900
    repeat = 1
    number = 1

    def setup(self):
        self.joblib = _needs("joblib")
        try:
            import shmproc.joblib_backend  # noqa: F401
        except ImportError:
            raise NotImplementedError("this shmproc has no joblib backend") from None
        self.array = np.random.default_rng(0).random((JOBLIB_MB << 20) // 8)

    def teardown(self):
        from joblib.externals.loky import get_reusable_executor
        get_reusable_executor().shutdown(wait=True)      # loky keeps its workers for reuse

    def _run(self, backend):
        joblib = self.joblib
        started = time.perf_counter()
        with joblib.parallel_config(backend=backend, n_jobs=2):
            results = joblib.Parallel()(joblib.delayed(np.take)(self.array, row)
                                        for row in range(JOBLIB_TASKS))
        return time.perf_counter() - started, results

    def track_tasks_sharing_an_array_speedup_over_loky(self):
        """JOBLIB_TASKS tasks each taking the same JOBLIB_MB MB ndarray: loky's time over
        shmproc's (compare_joblib.py runs the full 100 x 100 MB)."""
        loky, loky_results = self._run("loky")
        ours, our_results = self._run("shmproc")
        assert loky_results == our_results
        return loky / ours

    track_tasks_sharing_an_array_speedup_over_loky.unit = "ratio"
