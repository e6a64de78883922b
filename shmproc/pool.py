"""Pool: multiprocessing.Pool's API on shmproc's shared-memory rings (shmproc/pool_engine.py).

What it adds to multiprocessing.Pool (docs/pool.md): a worker that dies fails its own task with
WorkerLostError (or retries it, ``retries=``) and is replaced, instead of leaving ``map()`` waiting
forever; ``task_timeout=`` stops a task that runs too long by killing its worker; results that
cannot be pickled or unpickled fail their task only; ``maxtasksperchild`` counts tasks; ``imap``
takes ``buffersize=``; ``progress=True`` shows a bar; ``stats()`` tells what each worker did.

``ThreadPool`` is the standard library's: threads share memory already, rings would add nothing.
"""
import os
import warnings
from multiprocessing.pool import ThreadPool
from typing import Any

from shmproc import pool_worker as _w
from shmproc.pool_engine import CLOSE, RUN, TERMINATE, Engine
from shmproc.pool_results import (
    ApplyResult,
    AsyncResult,
    IMapIterator,
    IMapUnorderedIterator,
    MapResult,
    MaybeEncodingError,
    RemoteTraceback,
    TaskTimeoutError,
    WorkerLostError,
)
from shmproc.pool_tasks import Call, Job

__all__ = ["ApplyResult", "AsyncResult", "IMapIterator", "IMapUnorderedIterator", "MapResult",
           "MaybeEncodingError", "Pool", "RemoteTraceback", "TaskTimeoutError", "ThreadPool",
           "WorkerLostError", "RUN", "CLOSE", "TERMINATE"]

_POOL_DEFAULT = object()       # "use the pool's task_timeout"


def check_task_timeout(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"task_timeout must be a number of seconds or None, not {value!r}")
    if not value > 0:
        raise ValueError(f"task_timeout must be positive, not {value!r}")
    return float(value)


def check_retries(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"retries must be a non-negative int, not {value!r}")
    return value


def check_buffersize(buffersize):
    if buffersize is not None:
        if isinstance(buffersize, bool) or not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")


def check_callable(func, what="func"):
    if not callable(func):
        raise TypeError(f"{what} must be callable, not {type(func).__name__}")


def shmproc_context(context):
    """shmproc's context for the same start method as a standard library context (the pool's rings
    need shmproc's processes); any other object is used as it is, for its Process, as
    multiprocessing's Pool does."""
    import multiprocessing.context as _mp_context

    from shmproc import context as _context
    if context is None:
        return _context._default_context
    if isinstance(context, _context.BaseContext) or not isinstance(context, _mp_context.BaseContext):
        return context
    return _context._default_context.get_context(context.get_start_method())


def cluster_class(name):
    import importlib
    try:
        distributed = importlib.import_module("shmproc.distributed")
    except ModuleNotFoundError as exc:
        if exc.name != "shmproc.distributed":
            raise
        raise ImportError(f"cluster= needs shmproc.distributed.{name}, which this installation "
                          "of shmproc does not have") from None
    return getattr(distributed, name)


class Pool:
    """A pool of worker processes (multiprocessing.Pool), on shared-memory rings.

    Beyond multiprocessing: ``retries`` (a task whose worker died is run again up to this many
    times), ``task_timeout`` (seconds; a task running longer is stopped, its worker killed and
    replaced, and its caller gets TaskTimeoutError), ``cluster`` (a Dask cluster or client: the
    same API on shmproc.distributed.ClusterPool).
    """

    def __new__(cls, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                context=None, *, retries=0, task_timeout=None, cluster=None, **cluster_options):
        if cluster is not None:
            return cluster_class("ClusterPool")(processes, initializer, initargs, maxtasksperchild,
                                                cluster=cluster, context=context, retries=retries,
                                                task_timeout=task_timeout, **cluster_options)
        return super().__new__(cls)

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None, *, retries=0, task_timeout=None, cluster=None, **cluster_options):
        if cluster_options:
            raise TypeError(f"{', '.join(cluster_options)}: only with cluster= (a Dask cluster)")
        self._state: Any = None
        self._engine: Any = None
        if processes is None:
            processes = os.cpu_count() or 1
        if isinstance(processes, bool) or not isinstance(processes, int):
            raise TypeError(f"processes must be an int, not {type(processes).__name__}")
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None and (isinstance(maxtasksperchild, bool) or
                                             not isinstance(maxtasksperchild, int) or
                                             maxtasksperchild <= 0):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None:
            check_callable(initializer, "initializer")
        self._processes = processes
        self._task_timeout = check_task_timeout(task_timeout)
        self._ctx = shmproc_context(context)
        self._cache = {}
        self._engine = Engine(processes, initializer, tuple(initargs), maxtasksperchild,
                              self._ctx, retries=check_retries(retries),
                              task_timeout=self._task_timeout,
                              name=f"{self._ctx.get_start_method().capitalize()}PoolWorker")
        self._pool = self._engine.pool
        self._state = RUN

    # -- submitting -------------------------------------------------------------------------------

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _timeout(self, task_timeout):
        if task_timeout is _POOL_DEFAULT:
            return self._task_timeout
        return check_task_timeout(task_timeout)

    # kwds={}: multiprocessing's signature, never mutated here.
    def apply(self, func, args=(), kwds={}, *, task_timeout=_POOL_DEFAULT):  # noqa: B006
        """Equivalent of func(*args, **kwds), run in a worker; blocks until the result is ready."""
        return self.apply_async(func, args, kwds, task_timeout=task_timeout).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None, *,  # noqa: B006
                    task_timeout=_POOL_DEFAULT):
        """Asynchronous version of apply(): returns an AsyncResult."""
        self._check_running()
        check_callable(func)
        result = ApplyResult(callback, error_callback, cache=self._cache)
        self._engine.submit(Call(result, func, tuple(args), dict(kwds),
                                 self._timeout(task_timeout)))
        return result

    def map(self, func, iterable, chunksize=None, *, task_timeout=_POOL_DEFAULT, progress=False):
        """Apply func to each item of iterable; the results as a list, in order."""
        return self._map_async(func, iterable, _w.MAP, chunksize, None, None, task_timeout,
                               progress).get()

    def starmap(self, func, iterable, chunksize=None, *, task_timeout=_POOL_DEFAULT,
                progress=False):
        """Like map(), but each item is a tuple of arguments: func(*item)."""
        return self._map_async(func, iterable, _w.STARMAP, chunksize, None, None, task_timeout,
                               progress).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None, *,
                  task_timeout=_POOL_DEFAULT, progress=False):
        """Asynchronous version of map(): returns a MapResult."""
        return self._map_async(func, iterable, _w.MAP, chunksize, callback, error_callback,
                               task_timeout, progress)

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None,
                      *, task_timeout=_POOL_DEFAULT, progress=False):
        """Asynchronous version of starmap()."""
        return self._map_async(func, iterable, _w.STARMAP, chunksize, callback, error_callback,
                               task_timeout, progress)

    def _map_async(self, func, iterable, kind, chunksize, callback, error_callback, task_timeout,
                   progress):
        self._check_running()
        check_callable(func)
        timeout = self._timeout(task_timeout)
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        length = len(iterable)
        if chunksize is None:
            # multiprocessing's default chunks: few messages for a long input. Results stay
            # per task; chunksize=1 lets the pool size its batches from the measured task time.
            chunksize, extra = divmod(length, self._processes * 4)
            chunksize = max(1, chunksize + (1 if extra else 0))
        chunksize = _check_chunksize(chunksize)
        result = MapResult(length, callback, error_callback, cache=self._cache)
        if length:
            job = Job(result, kind, func, iter(iterable), length=length, timeout=timeout,
                      chunksize=chunksize, progress=progress_bar(progress, length))
            self._engine.submit(job)
        return result

    def imap(self, func, iterable, chunksize=1, *, buffersize=None, task_timeout=_POOL_DEFAULT,
             progress=False):
        """Like map(), but lazier: an iterator over the results, in order. buffersize bounds how
        far the input is read ahead of the consumer (an endless iterable works)."""
        return self._imap(IMapIterator, func, iterable, chunksize, buffersize, task_timeout,
                          progress)

    def imap_unordered(self, func, iterable, chunksize=1, *, buffersize=None,
                       task_timeout=_POOL_DEFAULT, progress=False):
        """Like imap(), but the results come in the order they finish."""
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize, buffersize,
                          task_timeout, progress, )

    def _imap(self, iterator_class, func, iterable, chunksize, buffersize, task_timeout,
              progress, kind=_w.MAP):
        self._check_running()
        check_callable(func)
        timeout = self._timeout(task_timeout)
        chunksize = _check_chunksize(chunksize)
        check_buffersize(buffersize)
        length = len(iterable) if hasattr(iterable, "__len__") else None
        results = iterator_class(cache=self._cache)
        self._engine.submit_iteration(results, kind, func, iterable, length, timeout, chunksize,
                                      buffersize, progress_bar(progress, length))
        return results

    # -- insight ----------------------------------------------------------------------------------

    def stats(self):
        """Per worker slot: pid, tasks finished, seconds busy in tasks, restarts, running now."""
        return self._engine.stats()

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self):
        """No more tasks: the workers exit once every submitted task is done."""
        if self._state == RUN:
            self._state = CLOSE
            self._engine.close()

    def terminate(self):
        """Stop the workers now; tasks not finished fail."""
        if self._engine is None:
            return
        self._state = TERMINATE
        self._engine.terminate()
        self._engine.join()
        self._engine.release()

    def join(self):
        """Wait for the workers to exit; close() or terminate() first."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        if self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        self._engine.join()
        self._engine.release()

    def _repopulate_pool(self):
        self._engine.repopulate()

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc_info):
        self.terminate()

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def __repr__(self):
        return (f"<{type(self).__module__}.{type(self).__qualname__} state={self._state} "
                f"pool_size={getattr(self, '_processes', None)}>")

    def __del__(self, _warn=warnings.warn, RUN=RUN):
        if self._state == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning, source=self)
        engine = getattr(self, "_engine", None)
        if engine is not None and engine.state != TERMINATE:
            engine.terminate()


def _check_chunksize(chunksize):
    if chunksize is None:
        return None
    if isinstance(chunksize, bool) or not isinstance(chunksize, int):
        raise TypeError(f"chunksize must be an int, not {type(chunksize).__name__}")
    if chunksize < 1:
        raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
    return None if chunksize == 1 else chunksize


def progress_bar(progress, total):
    if not progress:
        return None
    from shmproc.pool_progress import ProgressBar
    return ProgressBar(total)
