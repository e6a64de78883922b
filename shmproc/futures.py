"""ProcessPoolExecutor: concurrent.futures' executor on the pool engine of shmproc.pool.

A crashed worker fails the futures of the task it was running with ``BrokenWorkerError``, a
subclass of ``concurrent.futures.process.BrokenProcessPool`` (existing ``except`` clauses keep
working), and the executor goes on with a new worker: the standard executor instead declares
itself broken and fails every pending future. ``retries=`` and ``task_timeout=`` work as on
shmproc.Pool; ``map`` sends its tasks in batches, with ``buffersize=`` (Python 3.14) to read the
input lazily.
"""
import concurrent.futures
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.process import _RemoteTraceback as _StdlibRemoteTraceback
from multiprocessing import TimeoutError as _WaitTimeout
from typing import Any

from shmproc import pool_worker as _w
from shmproc.pool import (
    check_buffersize,
    check_callable,
    check_retries,
    check_task_timeout,
    cluster_class,
    progress_bar,
    shmproc_context,
)
from shmproc.pool_engine import TERMINATE, Engine
from shmproc.pool_future import PoolFuture, finish_many
from shmproc.pool_results import (
    IMapIterator,
    RemoteTraceback,
    TaskTimeoutError,
    WorkerLostError,
)
from shmproc.pool_tasks import Call

__all__ = ["BrokenWorkerError", "ProcessPoolExecutor", "ResultUnpicklingError",
           "TaskTimeoutError"]


class BrokenWorkerError(BrokenProcessPool, WorkerLostError):
    """The worker running this future's task died; the executor itself goes on."""

    def __init__(self, message, pid=None, exitcode=None, task_index=None, task_repr=None):
        WorkerLostError.__init__(self, message, pid, exitcode, task_index, task_repr)


class ResultUnpicklingError(BrokenProcessPool):
    """This future's result could not be unpickled here; the error is the ``__cause__``.

    A BrokenProcessPool because that is what the standard executor raises (it breaks on this, and
    code catches that); this executor goes on with its other futures."""

    @classmethod
    def wrapping(cls, error):
        exc = cls(f"the task's result could not be unpickled: {error!r}")
        exc.__cause__ = error
        return exc


def _for_executor(exc):
    if isinstance(exc, WorkerLostError) and not isinstance(exc, BrokenWorkerError):
        converted = BrokenWorkerError(exc.args[0], exc.pid, exc.exitcode, exc.task_index,
                                      exc.task_repr)
        return converted
    if type(exc) is RuntimeError and "pool was terminated" in str(exc):
        return BrokenProcessPool(str(exc))
    if isinstance(exc.__cause__, RemoteTraceback):
        # The standard executor chains the worker's traceback as its own class; code (and
        # CPython's tests) check that type.
        exc.__cause__ = _StdlibRemoteTraceback(exc.__cause__.tb)
    return exc


class Future(PoolFuture, Call):
    """What submit() returns: a concurrent.futures.Future (see shmproc/pool_future.py) that is
    also the engine's one-task job, and its own sink: one object per call, and no reference
    cycle to leave to the garbage collector."""

    __slots__ = ()
    sink = property(lambda self: self)

    def __init__(self, lock, func, args, kwargs, timeout):
        PoolFuture.__init__(self, lock)
        self._setup(func, args, kwargs, timeout)

    _cancel = PoolFuture.cancel

    def _set_result(self, index, success, value):
        try:
            if success:
                self.set_result(value)
            else:
                self.set_exception(_for_executor(value))
        except concurrent.futures.InvalidStateError:
            pass            # already failed (its timeout) or cancelled

    @staticmethod
    def finish_plain(calls, values):
        # One executor's futures share one lock: the batch is finished under one acquisition.
        finish_many(calls[0]._lock, calls, values)


class _MapResults(IMapIterator):
    def _set_result(self, index, success, value):
        super()._set_result(index, success, value if success else _for_executor(value))


class ProcessPoolExecutor(concurrent.futures.Executor):
    """An executor running calls in worker processes (concurrent.futures.ProcessPoolExecutor).

    Beyond the standard one: ``retries``, ``task_timeout`` (seconds; the future gets
    TaskTimeoutError, a TimeoutError, and the worker is replaced) and ``cluster``.
    """

    def __new__(cls, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                max_tasks_per_child=None, retries=0, task_timeout=None, cluster=None,
                **cluster_options):
        if cluster is not None:
            return cluster_class("ClusterExecutor")(
                max_workers, initializer, initargs, max_tasks_per_child, cluster=cluster,
                mp_context=mp_context, retries=retries, task_timeout=task_timeout,
                **cluster_options)
        return super().__new__(cls)

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None, retries=0, task_timeout=None, cluster=None,
                 **cluster_options):
        if cluster_options:
            raise TypeError(f"{', '.join(cluster_options)}: only with cluster= (a Dask cluster)")
        self._engine: Any = None
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None:
            check_callable(initializer, "initializer")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int) or isinstance(max_tasks_per_child, bool):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        context = shmproc_context(mp_context)
        self._max_workers = max_workers
        self._task_timeout = check_task_timeout(task_timeout)
        self._shutdown_lock = threading.Lock()
        self._future_lock = threading.RLock()      # shared by this executor's futures
        self._shutdown = False
        self._engine = Engine(max_workers, initializer, tuple(initargs), max_tasks_per_child,
                              context, retries=check_retries(retries),
                              task_timeout=self._task_timeout, name="ProcessPoolWorker",
                              executor_errors=True, finish_at_exit=True,
                              wrap_unpickling_error=ResultUnpicklingError.wrapping)

    def submit(self, fn, /, *args, **kwargs):
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if not callable(fn):
            check_callable(fn, "fn")
        future = Future(self._future_lock, fn, args, kwargs, self._task_timeout)
        self._engine.submit(future)
        return future

    submit.__doc__ = concurrent.futures.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None, progress=False):
        """Like map(fn, *iterables), the calls run in the workers (in batches); results in order.
        timeout bounds the whole iteration; buffersize, how far input is read ahead."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        check_buffersize(buffersize)
        check_callable(fn, "fn")
        end_time = None if timeout is None else timeout + time.monotonic()
        arguments: Any = zip(*iterables)
        if buffersize is None:
            arguments = list(arguments)          # as the standard executor: read it all now
        length = len(arguments) if buffersize is None else None
        results = _MapResults()
        job = self._engine.submit_iteration(
            results, _w.STARMAP, fn, arguments, length, self._task_timeout,
            None if chunksize == 1 else chunksize, buffersize, progress_bar(progress, length))
        return _iterate(results, job, end_time)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._shutdown_lock:
            self._shutdown = True
        engine = self._engine
        if engine is None:
            return
        if cancel_futures:
            engine.cancel_pending()
        engine.close()
        if wait:
            engine.join()
            engine.release()

    shutdown.__doc__ = concurrent.futures.Executor.shutdown.__doc__

    def terminate_workers(self, signal=None):
        """Stop every worker now (SIGTERM); futures not finished fail with BrokenProcessPool."""
        self._stop_workers(kill=False)

    def kill_workers(self):
        """Like terminate_workers(), with SIGKILL."""
        self._stop_workers(kill=True)

    def _stop_workers(self, kill):
        with self._shutdown_lock:
            self._shutdown = True
        engine = self._engine
        if engine is None or engine.state == TERMINATE:
            return
        if kill:
            for process in list(engine.pool):
                try:
                    process.kill()
                except Exception:
                    pass
        engine.terminate()
        engine.join()
        engine.release()

    def stats(self):
        """Per worker slot: pid, tasks finished, seconds busy in tasks, restarts, running now."""
        return self._engine.stats()

    def __del__(self):
        # As the standard executor, whose manager thread, woken when its executor is collected,
        # runs the calls submitted to the end and then stops the workers: shutdown(wait=False).
        engine = getattr(self, "_engine", None)
        if engine is not None and engine.state != TERMINATE:
            engine.close()


def _iterate(results, job, end_time):
    try:
        while True:
            if end_time is None:
                yield results.next()
            else:
                try:
                    yield results.next(max(0.0, end_time - time.monotonic()))
                except _WaitTimeout as exc:
                    if isinstance(exc, TaskTimeoutError):
                        raise
                    raise concurrent.futures.TimeoutError from None
    except StopIteration:
        return
    finally:
        job.dropped = True

