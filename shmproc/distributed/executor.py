"""ClusterExecutor: a concurrent.futures executor whose calls run on a Dask cluster.

The same engine as ClusterPool (engine.py): submit() calls that queue up go out together as one
Dask task, map() is cut into batches sized from the tasks' measured time. Futures are standard
concurrent.futures ones (concurrent.futures.wait/as_completed and asyncio.wrap_future work); a task
lost with its workers, or with the scheduler, fails its future with BrokenClusterPool, a
BrokenProcessPool, with the cause chained.
"""
import concurrent.futures
import threading
import time
from multiprocessing import TimeoutError as _WaitTimeout

from shmproc import pool_worker as _w
from shmproc.distributed.clients import connect
from shmproc.distributed.engine import ClusterEngine
from shmproc.distributed.errors import BrokenClusterPool, SchedulerLostError
from shmproc.pool import _progress, check_callable, check_retries
from shmproc.pool_engine import TERMINATE, Job
from shmproc.pool_results import IMapIterator, WorkerLostError

__all__ = ["ClusterExecutor"]


def _for_executor(exc):
    if isinstance(exc, (WorkerLostError, SchedulerLostError)) or (
            type(exc) is RuntimeError and "pool was terminated" in str(exc)):
        broken = BrokenClusterPool(str(exc))
        broken.__cause__ = exc
        return broken
    return exc


class _FutureSink:
    """What the engine fills for one submit(): a concurrent.futures.Future."""

    __slots__ = ("future",)

    def __init__(self, future):
        self.future = future

    def _start(self):
        return self.future.set_running_or_notify_cancel()

    def _cancel(self):
        return self.future.cancel()

    def _set_result(self, index, success, value):
        if self.future.done():
            return
        if success:
            self.future.set_result(value)
        else:
            self.future.set_exception(_for_executor(value))


class _MapResults(IMapIterator):
    def _set_result(self, index, success, value):
        super()._set_result(index, success, value if success else _for_executor(value))


class ClusterExecutor(concurrent.futures.Executor):
    """An executor on a Dask cluster; ``cluster``, ``security`` and ``insecure`` as for
    ClusterPool. ``max_workers`` sizes only a ``"local"`` cluster; ``max_tasks_per_child`` and
    ``task_timeout`` are not supported."""

    def __init__(self, max_workers=None, initializer=None, initargs=(), max_tasks_per_child=None,
                 *, cluster, mp_context=None, retries=0, task_timeout=None, security=None,
                 insecure=False):
        self._engine = None
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if max_tasks_per_child is not None:
            raise ValueError("max_tasks_per_child is not supported with cluster= (Dask workers "
                             "are long-lived)")
        if task_timeout is not None:
            raise ValueError("task_timeout is not supported with cluster=")
        if initializer is not None:
            check_callable(initializer, "initializer")
        retries = check_retries(retries)
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        connection = connect(cluster, max_workers, security=security, insecure=insecure)
        try:
            self._engine = ClusterEngine(connection, initializer, tuple(initargs), retries)
        except BaseException:
            connection.close()
            raise

    @property
    def client(self):
        """The distributed.Client the executor's tasks go through."""
        return self._engine.client

    def _check_open(self):
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def submit(self, fn, /, *args, **kwargs):
        self._check_open()
        check_callable(fn, "fn")
        future = concurrent.futures.Future()
        self._engine.submit(Job(_FutureSink(future), _w.APPLY, fn, (args, kwargs), length=1))
        return future

    submit.__doc__ = concurrent.futures.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=None, buffersize=None, progress=False):
        """Like map(fn, *iterables), the calls run on the cluster in batches; results in order.
        chunksize None (the default) sizes batches from the tasks' measured time."""
        self._check_open()
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None:
            if not isinstance(buffersize, int) or isinstance(buffersize, bool):
                raise TypeError("buffersize must be an integer or None")
            if buffersize < 1:
                raise ValueError("buffersize must be None or > 0")
        check_callable(fn, "fn")
        end_time = None if timeout is None else timeout + time.monotonic()
        arguments = zip(*iterables)
        if buffersize is None:
            arguments = list(arguments)          # as the standard executor: read it all now
        length = len(arguments) if buffersize is None else None
        results = _MapResults()
        job = Job(results, _w.STARMAP, fn, iter(arguments), length=length, chunksize=chunksize,
                  buffersize=buffersize, progress=_progress(progress, length))
        if length is not None:
            results._set_length(length)
        if buffersize is not None:
            engine = self._engine
            results._on_consume = lambda count: engine.consumed(job, count)
        self._engine.submit(job)
        return _iterate(results, end_time)

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

    def stats(self):
        """Per Dask worker: tasks done and seconds spent in them."""
        return self._engine.stats()

    def __del__(self):
        engine = getattr(self, "_engine", None)
        if engine is not None and engine.state != TERMINATE:
            engine.terminate()


def _iterate(results, end_time):
    try:
        while True:
            if end_time is None:
                yield results.next()
            else:
                try:
                    yield results.next(max(0.0, end_time - time.monotonic()))
                except _WaitTimeout:
                    raise concurrent.futures.TimeoutError from None
    except StopIteration:
        return
