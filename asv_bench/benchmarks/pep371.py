"""PEP 371's tables: each workload run N times serially, in N threads and in N processes (with
multiprocessing and with shmproc), N = 1, 2, 4, 8. The workloads and their runner have one home,
shmproc/bench/ (what `python -m shmproc bench` runs), loaded from this checkout (common.checkout_bench)
so that an old commit is measured with today's workloads; at their short sizes, so that every commit
can be measured.
"""
from .common import checkout_bench, side_by_side_ratio

runner = checkout_bench("runner")
WORKLOADS = checkout_bench("workloads").WORKLOADS

WORKERS = [1, 2, 4, 8]
SIZE = "short"


class _Prepared:
    """Opens a workload's resource (a file, a page server) in setup and closes it in teardown."""
    resource = None             # asv calls teardown after a setup that skipped, too

    def prepare(self, name, modes):
        self.spec = WORKLOADS[name]
        for mode in modes:
            reason = runner.check_available(self.spec, mode)
            if reason is not None:
                raise NotImplementedError(reason)
        self.resource = self.spec.resource() if self.spec.resource else None
        extra = self.resource.__enter__() if self.resource else {}
        self.arguments = dict(self.spec.arguments(SIZE), **extra)

    def teardown(self, *params):
        if self.resource is not None:
            self.resource.__exit__(None, None, None)


class _Workload(_Prepared):
    """Base: subclasses name a workload."""
    workload = None
    params = (list(runner.MODES), WORKERS)
    param_names = ["mode", "workers"]
    number = 1                  # one sample = one run of N workers, as the PEP timed it
    repeat = (3, 10, 30.0)
    warmup_time = 0
    timeout = 300

    def setup(self, mode, workers):
        self.prepare(self.workload, [mode])

    def time_workers(self, mode, workers):
        runner.run_once(self.spec, mode, workers, self.arguments)


class EmptyFunction(_Workload):
    workload = "empty"


class Fibonacci(_Workload):
    workload = "fibonacci"


class SumPrimes(_Workload):
    workload = "primes"


class FileIO(_Workload):
    workload = "file_io"


class UrlGet(_Workload):
    workload = "url_get"


class QueueOverhead(_Workload):
    workload = "queue"


class ShmprocOverMultiprocessing(_Prepared):
    """shmproc's time over multiprocessing's for each workload, both measured in one process,
    interleaved: the figure to watch across commits (below 1: shmproc is faster)."""
    params = (list(WORKLOADS), [2])         # 4 and 8 workers: see the time_workers tables
    param_names = ["workload", "workers"]
    unit = "ratio"
    timeout = 300

    def setup(self, workload, workers):
        self.prepare(workload, runner.PROCESS_BACKENDS)

    def track_ratio(self, workload, workers):
        def timer(mode):
            return lambda: runner.run_once(self.spec, mode, workers, self.arguments)
        return side_by_side_ratio(timer("shmproc"), timer("multiprocessing"), repeat=3)
