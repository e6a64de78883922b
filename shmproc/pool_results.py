"""What a pool hands back: the result objects of multiprocessing.pool and the pool's exceptions.

An engine (shmproc.pool's own, or a cluster's) feeds results in one task at a time with
``_set_result(index, success, value)``; the objects here only wait, order and call back. ``index``
is the task's position in its call (0 for ``apply_async``). A task is one call of the user's
function, never a chunk: a map over n items is n results, whatever the chunk size.

The classes are multiprocessing's in behaviour (``get``/``wait``/``ready``/``successful``, the
first error of a map raised once every task is done, ``imap``'s ``next(timeout)``), and carry the
standard library's ``RemoteTraceback`` and ``MaybeEncodingError`` so that code which catches those
keeps working.
"""
import builtins
import collections
import itertools
import multiprocessing.pool
import threading
import types
from multiprocessing import ProcessError
from multiprocessing import TimeoutError as _MultiprocessingTimeoutError
from typing import Any

# Public in multiprocessing.pool, but missing from its type stubs.
_mp_pool: Any = multiprocessing.pool
MaybeEncodingError = _mp_pool.MaybeEncodingError
RemoteTraceback = _mp_pool.RemoteTraceback

__all__ = ["ApplyResult", "AsyncResult", "IMapIterator", "IMapUnorderedIterator", "MapResult",
           "MaybeEncodingError", "RemoteTraceback", "TaskTimeoutError", "WorkerLostError"]

_job_counter = itertools.count()


class WorkerLostError(ProcessError):
    """The worker running a task died before finishing it (killed, crashed, exited).

    ``pid`` and ``exitcode`` are the worker's (a negative exitcode is minus the signal number, as
    in Process.exitcode); ``signal`` is the signal's name or None; ``task_index`` the task's
    position in its call and ``task_repr`` its arguments' repr, cut short."""

    def __init__(self, message, pid=None, exitcode=None, task_index=None, task_repr=None):
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.task_index = task_index
        self.task_repr = task_repr

    @property
    def signal(self):
        if self.exitcode is None or self.exitcode >= 0:
            return None
        import signal
        try:
            return signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    def __reduce__(self):
        return type(self), (self.args[0], self.pid, self.exitcode, self.task_index, self.task_repr)


class TaskTimeoutError(_MultiprocessingTimeoutError, builtins.TimeoutError):
    """A task ran past its task_timeout; its worker was killed and replaced. Both
    multiprocessing.TimeoutError and the builtin TimeoutError (concurrent.futures') catch it."""

    def __init__(self, message, timeout=None, task_index=None, task_repr=None):
        Exception.__init__(self, message)
        self.timeout = timeout
        self.task_index = task_index
        self.task_repr = task_repr

    def __str__(self):
        return str(self.args[0])

    def __reduce__(self):
        return type(self), (self.args[0], self.timeout, self.task_index, self.task_repr)


class ApplyResult:
    """The result of one task (multiprocessing.pool.ApplyResult, also called AsyncResult)."""

    def __init__(self, callback=None, error_callback=None, *, cache=None):
        self._event = threading.Event()
        self._job = next(_job_counter)
        self._callback = callback
        self._error_callback = error_callback
        self._success: Any = None
        self._value: Any = None
        self._cache = cache
        if cache is not None:
            cache[self._job] = self

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def get(self, timeout=None):
        self.wait(timeout)
        if not self.ready():
            raise _MultiprocessingTimeoutError
        if self._success:
            return self._value
        raise self._value

    def _start(self):
        """The engine is about to send the task: False if it must not (a cancelled future)."""
        return True

    def _set_result(self, index, success, value):
        self._success, self._value = success, value
        self._finish()

    def _finish(self):
        try:
            if self._success:
                if self._callback is not None:
                    self._callback(self._value)
            elif self._error_callback is not None:
                self._error_callback(self._value)
        finally:
            self._event.set()
            if self._cache is not None:
                self._cache.pop(self._job, None)

    # Engines report how many tasks a result still waits for (for progress and shutdown).
    def _tasks_expected(self):
        return 1

    __class_getitem__: Any = classmethod(types.GenericAlias)


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """The result of map_async/starmap_async: a list, or the first error once every task is done
    (as multiprocessing, which waits for all of them before reporting)."""

    def __init__(self, length, callback=None, error_callback=None, *, cache=None):
        super().__init__(callback, error_callback, cache=cache)
        self._success = True
        self._value = [None] * length
        self._left = length
        self._lock = threading.Lock()
        if length == 0:
            self._finish()

    def _set_result(self, index, success, value):
        with self._lock:
            if success:
                if self._success:
                    self._value[index] = value
            elif self._success:
                self._success, self._value = False, value
            self._left -= 1
            done = self._left == 0
        if done:
            self._finish()

    def _set_results(self, start, values):
        """Many successes at once, at consecutive indices (the fast path of a batch)."""
        with self._lock:
            if self._success:
                self._value[start:start + len(values)] = values
            self._left -= len(values)
            done = self._left == 0
        if done:
            self._finish()

    def _tasks_expected(self):
        return len(self._value) if self._success else 0


class IMapIterator:
    """The iterator of imap: results in input order; next(timeout) raises
    multiprocessing.TimeoutError when none came in time (the task goes on)."""

    def __init__(self, *, cache=None, on_consume=None):
        self._cond = threading.Condition(threading.Lock())
        self._job = next(_job_counter)
        self._items: collections.deque = collections.deque()
        self._index = 0
        self._length = None
        self._unsorted = {}
        self._cache = cache
        self._on_consume = on_consume     # the engine's hook: lazy input may advance
        if cache is not None:
            cache[self._job] = self

    def __iter__(self):
        return self

    def next(self, timeout=None):
        with self._cond:
            if not self._items:
                if self._index == self._length:
                    raise StopIteration
                self._cond.wait_for(lambda: self._items or self._index == self._length, timeout)
                if not self._items:
                    if self._index == self._length:
                        raise StopIteration
                    raise _MultiprocessingTimeoutError
            success, value = self._items.popleft()
        if self._on_consume is not None:
            self._on_consume(1)
        if success:
            return value
        raise value

    __next__ = next

    def _set_result(self, index, success, value):
        with self._cond:
            self._accept(index, (success, value))
            self._cond.notify()
            self._check_done()

    def _set_results(self, start, values):
        with self._cond:
            for offset, value in enumerate(values):
                self._accept(start + offset, (True, value))
            self._cond.notify()
            self._check_done()

    def _accept(self, index, item):
        if index == self._index:
            self._items.append(item)
            self._index += 1
            while self._index in self._unsorted:
                self._items.append(self._unsorted.pop(self._index))
                self._index += 1
        else:
            self._unsorted[index] = item

    def _set_length(self, length):
        with self._cond:
            self._length = length
            self._cond.notify_all()
            self._check_done()

    def _check_done(self):
        if self._index == self._length and self._cache is not None:
            self._cache.pop(self._job, None)

    def _tasks_expected(self):
        return -1 if self._length is None else self._length - self._index

    __class_getitem__: Any = classmethod(types.GenericAlias)


class IMapUnorderedIterator(IMapIterator):
    """The iterator of imap_unordered: results in the order they finish."""

    def _accept(self, index, item):
        self._items.append(item)
        self._index += 1
