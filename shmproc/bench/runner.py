"""Run a workload as PEP 371 did: N times serially, in N threads, in N processes (one row per N).

The process rows run twice, once with multiprocessing and once with shmproc, both under the same
start method (fork by default, as on Linux in 2008), so the backend is the only difference. A
table's cells are measured interleaved, repeat by repeat (see `timing`), and reported as medians.
"""
import contextlib
import functools
import multiprocessing
import queue as queue_module
import threading
import time

from .timing import interleaved
from .workloads import WORKLOADS

__all__ = [
    "DEFAULT_START_METHOD", "MODES", "PROCESS_BACKENDS", "check_available", "measure_table",
    "process_context", "run_once",
]

MODES = ("serial", "threads", "multiprocessing", "shmproc")
PROCESS_BACKENDS = ("multiprocessing", "shmproc")
DEFAULT_START_METHOD = "fork"
JOIN_TIMEOUT = 120


def process_context(backend, start_method=DEFAULT_START_METHOD):
    """The context whose Process (and Queue) a process row uses; NotImplementedError if the
    installed shmproc does not offer one yet."""
    if backend == "multiprocessing":
        return multiprocessing.get_context(start_method)
    import shmproc
    get_context = getattr(shmproc, "get_context", None)
    if get_context is None:
        raise NotImplementedError("shmproc.get_context is not available in this version")
    return get_context(start_method)


def make_queue(mode, context):
    if context is None:
        return queue_module.SimpleQueue()
    made = context.Queue()
    if mode == "shmproc" and type(made).__module__.split(".")[0] != "shmproc":
        # The context may lend multiprocessing's Queue; timing that would credit shmproc with it.
        raise NotImplementedError("shmproc has no Queue of its own in this version")
    return made


def check_available(workload, mode, start_method=DEFAULT_START_METHOD):
    """None if `mode` can run `workload` here, else the reason it cannot."""
    if mode not in PROCESS_BACKENDS:
        return None
    try:
        context = process_context(mode, start_method)
        if workload.uses_queue:
            close_queue(make_queue(mode, context))
    except NotImplementedError as exc:
        return str(exc)
    return None


def close_queue(used):
    if hasattr(used, "join_thread"):
        used.close()
        used.join_thread()


class ThreadWorker(threading.Thread):
    """A thread that keeps the exception its target raised, so a failed run is not timed as fast."""

    def run(self):
        self.error = None
        try:
            super().run()
        except BaseException as exc:
            self.error = exc


def run_once(workload, mode, workers, arguments, start_method=DEFAULT_START_METHOD):
    """Seconds for `workers` runs of the workload's body in `mode`, from creating the first worker
    to joining the last (and, for the queue workload, receiving every item)."""
    context = process_context(mode, start_method) if mode in PROCESS_BACKENDS else None
    channel = make_queue(mode, context) if workload.uses_queue else None
    kwargs = dict(arguments, queue=channel) if channel is not None else arguments
    expected_items = workers * arguments.get("items", 0)
    try:
        start = time.perf_counter()
        if mode == "serial":
            for _ in range(workers):
                workload.body(**kwargs)
            drain(channel, expected_items)
        else:
            factory = ThreadWorker if context is None else context.Process     # None: threads
            runners = [factory(target=workload.body, kwargs=kwargs) for _ in range(workers)]
            for runner in runners:
                runner.start()
            drain(channel, expected_items)
            for runner in runners:
                runner.join(JOIN_TIMEOUT)
        elapsed = time.perf_counter() - start
    finally:
        if channel is not None:
            close_queue(channel)
    if mode != "serial":
        check_finished(runners)
    return elapsed


def drain(channel, count):
    for _ in range(count):
        channel.get(timeout=JOIN_TIMEOUT)


def check_finished(runners):
    for runner in runners:
        if runner.is_alive():
            raise RuntimeError(f"a benchmark worker did not finish within {JOIN_TIMEOUT} s")
        error = getattr(runner, "error", None)
        if error is not None:
            raise RuntimeError("a benchmark thread failed") from error
        if getattr(runner, "exitcode", 0) != 0:
            raise RuntimeError(f"a benchmark process failed with exit code {runner.exitcode}")


def sample(workload, mode, workers, arguments, start_method, on_sample):
    seconds = run_once(workload, mode, workers, arguments, start_method)
    if on_sample is not None:
        on_sample(f"{workload.name} x{workers} {mode}")
    return seconds


def measure_table(workload_name, workers_list, repeat, size="short", modes=MODES,
                  start_method=DEFAULT_START_METHOD, on_sample=None):
    """Samples for one workload: {workers: {mode: [seconds, ...]}}, with None for a mode that is
    not available (and `skipped`, mode -> reason). on_sample(description) is called per sample."""
    workload = WORKLOADS[workload_name]
    skipped = {}
    for mode in modes:
        reason = check_available(workload, mode, start_method)
        if reason is not None:
            skipped[mode] = reason
    runnable = [mode for mode in modes if mode not in skipped]
    samples = {}
    with workload.resource() if workload.resource else contextlib.nullcontext() as extra:
        arguments = dict(workload.arguments(size), **(extra or {}))
        for mode in runnable:
            # Untimed: the first run of a mode pays one-off costs (lazy imports, page faults).
            run_once(workload, mode, 1, arguments, start_method)
        for workers in workers_list:
            row = interleaved({mode: functools.partial(sample, workload, mode, workers, arguments,
                                                       start_method, on_sample)
                               for mode in runnable}, repeat)
            samples[workers] = {mode: row.get(mode) for mode in modes}
    return samples, skipped

