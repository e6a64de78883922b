"""Process start + join of an empty target, multiprocessing against shmproc, per start method:
PEP 371's first row, and the targets of docs/process.md (fork at least 1.2x faster; spawn and
forkserver no slower). `asv_bench/compare_process.py` prints the same figures without asv.
"""
import os
import time

from .common import checkout_bench, side_by_side_ratio

START_METHODS = ["fork", "forkserver", "spawn"]
IMPLEMENTATIONS = ["multiprocessing", "shmproc"]


def context_of(implementation, start_method):
    """The context whose Process is timed; NotImplementedError (asv: skipped) if shmproc lacks it."""
    return checkout_bench("runner").process_context(implementation, start_method)


def start_join(ctx):
    # os.getpid stands for an empty function: spawned children must import the target, and asv's
    # benchmark package is not importable there.
    process = ctx.Process(target=os.getpid)
    process.start()
    process.join()


def timed_start_joins(ctx, number):
    """Seconds per start + join, over `number` of them."""
    def measure():
        started = time.perf_counter()
        for _ in range(number):
            start_join(ctx)
        return (time.perf_counter() - started) / number
    return measure


class StartJoin:
    params = (START_METHODS, IMPLEMENTATIONS)
    param_names = ["start_method", "implementation"]
    timeout = 300
    warmup_time = 0

    def setup(self, start_method, implementation):
        self.ctx = context_of(implementation, start_method)
        # The fork server, the resource tracker and first imports start once, outside the timing.
        start_join(self.ctx)

    def time_start_join(self, start_method, implementation):
        start_join(self.ctx)


class ShmprocOverMultiprocessing:
    """shmproc's start + join time over multiprocessing's, measured interleaved in one process
    (below 1: shmproc is faster; the fork target is 1/1.2 = 0.83 or less)."""
    params = [START_METHODS]
    param_names = ["start_method"]
    unit = "ratio"
    timeout = 600

    def setup(self, start_method):
        self.ours = context_of("shmproc", start_method)
        self.theirs = context_of("multiprocessing", start_method)
        start_join(self.ours)
        start_join(self.theirs)

    def track_ratio(self, start_method):
        number = 200 if start_method == "fork" else 5
        return side_by_side_ratio(timed_start_joins(self.ours, number),
                                  timed_start_joins(self.theirs, number), repeat=7)
