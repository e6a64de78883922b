"""The executor's Future: concurrent.futures.Future, made and finished cheaply.

A standard Future builds a ``threading.Condition`` (a Python object wrapping an RLock) when it is
made and takes it around every change of state: about 2 us per submit() of locking and wrapping
here, a third of the executor's budget per task. This one keeps every attribute that
``concurrent.futures.wait``, ``as_completed`` and ``asyncio.wrap_future`` read (``_state``,
``_waiters``, ``_done_callbacks``, ``_condition``), with these changes:

- all the futures of one executor share one re-entrant lock; a future's ``_condition`` is a
  Condition on that lock, made the first time something waits on or locks that future (most
  futures are done before anyone asks, and are never waited on);
- the engine finishes a whole batch of results under one acquisition of the lock
  (``finish_many``): per result, a store of the value and the state, and a look at whether anyone
  waits or gave a callback;
- ``done()``, ``running()``, ``cancelled()`` and ``result()`` of a finished future read the state
  without the lock: the state is written last, after the value, under the GIL.

Every other method is the standard one, running on the lazily made condition. One state change
is added: a future marked running when its call was sent to a worker becomes cancelled if that
worker reports it did not start the call (``shutdown(cancel_futures=True)``).
"""
import threading
from concurrent.futures import Future, _base

__all__ = ["PoolFuture", "finish_many"]

_PENDING = _base.PENDING
_RUNNING = _base.RUNNING
_FINISHED = _base.FINISHED
_CANCELLED_STATES = (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED)
_DONE_STATES = (_base.FINISHED, _base.CANCELLED, _base.CANCELLED_AND_NOTIFIED)


class PoolFuture(Future):
    """A concurrent.futures.Future whose lock is shared with its executor's other futures."""

    def __init__(self, lock):
        # Not Future.__init__: that makes the Condition this class makes only when needed.
        self._lock = lock
        self._cond = None
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []

    @property
    def _condition(self):
        cond = self._cond
        if cond is None:
            with self._lock:
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition(self._lock)
        return cond

    @_condition.setter
    def _condition(self, value):
        self._cond = value

    def done(self):
        return self._state in _DONE_STATES

    def cancelled(self):
        return self._state in _CANCELLED_STATES

    def running(self):
        return self._state == _RUNNING

    def result(self, timeout=None):
        if self._state == _FINISHED and self._exception is None:
            return self._result
        return Future.result(self, timeout)

    def _start(self):
        """set_running_or_notify_cancel(), without the condition in the common case."""
        with self._lock:
            if self._state == _PENDING:
                self._state = _RUNNING
                return True
        return self.set_running_or_notify_cancel()

    def _cancel_unstarted(self):
        """Cancelled after all: this call was sent to a worker (and so marked running, as the
        standard executor marks the calls in its call queue), and the worker, told by
        shutdown(cancel_futures=True), reports that it did not start it."""
        with self._lock:
            if self._state != _RUNNING:
                return
            self._state = _base.CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            if self._cond is not None:
                self._cond.notify_all()
        self._invoke_callbacks()        # type: ignore[attr-defined]  # not in the stubs


def finish_many(lock, futures, values):
    """set_result(value) on each future (those already finished or cancelled are left as they
    are), under one acquisition of their shared lock; callbacks run after it, as set_result's."""
    called = None
    with lock:
        for future, value in zip(futures, values):
            if future._state in _DONE_STATES:
                continue
            future._result = value
            future._state = _FINISHED
            if future._cond is not None:
                future._cond.notify_all()
            if future._waiters:
                for waiter in future._waiters:
                    waiter.add_result(future)
            if future._done_callbacks:
                if called is None:
                    called = []
                called.append(future)
    if called is not None:
        for future in called:
            future._invoke_callbacks()
