"""Queue, SimpleQueue and JoinableQueue on a shared-memory message ring (multiprocessing's API).

Each queue is one ring in a shared-memory segment (shmproc/core/queue.pyx over core/ring.pyx).
There is no feeder thread: ``put()`` pickles in the caller and copies the message straight into
shared memory, so an object that cannot be pickled raises in ``put()``, a message is in the queue
when ``put()`` returns, and
``qsize()``, ``task_done()`` and ``join()`` work across processes. Beyond multiprocessing:
``put_many(iterable)`` and ``get_many(max_messages)`` move many messages per lock acquisition.

A queue pickles as a handle to its shared state, so it can be passed to a child under any start
method, and through another queue or pipe; like every shared object sent through a queue, it
outlives the process that sent it (docs/internals/handles.md).
"""
import queue
import types

from shmproc import _core

__all__ = ["Queue", "SimpleQueue", "JoinableQueue", "Empty", "Full", "TaskLostError"]

Empty = queue.Empty
Full = queue.Full
TaskLostError = _core.TaskLostError


def _reader_connection(queue):
    """A read-only Connection over a queue, for multiprocessing.connection.wait() and
    shmproc.connection.wait() (the queue itself works there too: it has fileno()). The standard
    library's process pool reads its SimpleQueue this way."""
    from shmproc.connection import Connection
    return Connection(_core.queue_reading_end(queue), None)


class Queue(_core.QueueCore):
    """A process-shared FIFO queue (multiprocessing.Queue).

    maxsize bounds the number of messages (0: none; put() does not wait for room, as the ring grows
    in shared memory while readers lag). capacity is the ring's window in bytes, a power of two:
    the memory it uses while readers keep up; messages larger than a quarter of it travel through a
    side file instead, so any size goes through.
    """

    def __init__(self, maxsize=0, *, ctx=None, capacity=_core.QUEUE_CAPACITY):
        super().__init__(maxsize, capacity)

    def close(self):
        """This process will use the queue no more: put and get now raise ValueError."""
        super().close()

    def join_thread(self):
        """Nothing to wait for: put() has already written every message. Like multiprocessing, this
        may only be called after close()."""
        if not self._closed:
            raise AssertionError(f"Queue {self!r} not closed")

    def cancel_join_thread(self):
        """Nothing to cancel: there is no feeder thread."""

    _reader = property(_reader_connection)
    __class_getitem__ = classmethod(types.GenericAlias)  # type: ignore[var-annotated]


class JoinableQueue(_core.JoinableQueueCore, Queue):
    """A Queue that counts unfinished tasks across processes (multiprocessing.JoinableQueue):
    task_done() and join() come from the core (core/tasks.pyx)."""


class SimpleQueue(_core.QueueCore):
    """A process-shared FIFO queue with only put, get, empty and close
    (multiprocessing.SimpleQueue). After close(), put and get raise OSError, as there."""

    def __init__(self, *, ctx=None, capacity=_core.QUEUE_CAPACITY):
        super().__init__(0, capacity, simple=True)

    def close(self):
        super().close()

    _reader = property(_reader_connection)
    __class_getitem__ = classmethod(types.GenericAlias)  # type: ignore[var-annotated]
