"""What the pool engine (shmproc/pool_engine.py) keeps track of: a Job per call to the pool (its
input, function, options and where results go), a Call per apply()/submit(), a batch of tasks in
flight to one worker, and the engine's record of each worker slot."""
import collections
import itertools
import signal
import traceback
from typing import Any

from shmproc import pool_worker as _w

__all__ = ["Batch", "Call", "Job", "WorkerSlot", "as_buffer", "find_task", "short_repr", "signal_name",
           "RUN", "CLOSE", "TERMINATE"]

_REPR_LIMIT = 200

# An engine's states, as multiprocessing.pool's: taking work, finishing what it has, stopped.
RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"


def short_repr(obj):
    try:
        text = repr(obj)
    except Exception as exc:
        text = f"<repr failed: {exc!r}>"
    return text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT - 3] + "..."


class Job:
    """One call to the pool: its tasks' input, function, options and where results go."""

    __slots__ = ("sink", "kind", "func", "source", "next_index", "length", "timeout", "chunksize",
                 "buffersize", "consumed", "progress", "pending", "exhausted", "dropped",
                 "input_error")

    def __init__(self, sink, kind, func, source, *, length=None, timeout=None, chunksize=None,
                 buffersize=None, progress=None):
        self.sink = sink
        self.kind = kind
        self.func = func
        self.source = source            # an iterator of items (args tuples for APPLY)
        self.next_index = 0
        self.length = length
        self.timeout = timeout
        self.chunksize = chunksize
        self.buffersize = buffersize
        self.consumed = 0
        self.progress = progress
        self.pending = 0                # tasks taken from source whose result is not in yet
        self.exhausted = False
        self.dropped = False            # the caller stopped wanting results (cancelled)
        self.input_error = None

    def _take(self, count):
        """Up to count items from the source (fewer when the buffer or the input ends). An
        exception from the input is kept in input_error, after the items read before it."""
        if self.buffersize is not None:
            count = min(count, self.consumed + self.buffersize - self.next_index)
        if count <= 0:
            return []
        items: list = []
        try:
            items.extend(itertools.islice(self.source, count))
        except BaseException as exc:
            self.input_error = exc
            return items
        if len(items) < count:
            self.exhausted = True
        return items


class Call:
    """One apply_async()/submit(): a Job of one task, made cheaply (it is made per call)."""

    __slots__ = ("sink", "func", "source", "timeout", "dropped", "pending", "next_index")
    kind = _w.APPLY
    progress = None
    length = 1
    chunksize = None
    buffersize = None
    exhausted = True
    input_error = None

    def __init__(self, sink, func, args, kwargs, timeout):
        self.sink = sink
        self._setup(func, args, kwargs, timeout)

    def _setup(self, func, args, kwargs, timeout):
        self.func = func
        self.source = (args, kwargs)
        self.timeout = timeout
        self.dropped = False            # the caller stopped wanting results (cancelled)
        self.pending = 1
        self.next_index = 1

    @staticmethod
    def finish_plain(calls, values):
        """Calls of one kind that returned plain values: one result each. A kind of Call may
        replace this with a cheaper way to finish a whole batch of them."""
        for call, value in zip(calls, values):
            call.pending = 0
            try:
                call.sink._set_result(0, True, value)
            except Exception:
                traceback.print_exc()


class Batch:
    """Tasks sent to one worker in one message; results come back in order."""

    __slots__ = ("number", "first_seq", "jobs", "indices", "items", "attempts", "received", "kind",
                 "func", "mode")

    def __init__(self, number, first_seq, jobs, indices, items, attempts, kind, func):
        self.number = number
        self.first_seq = first_seq
        self.jobs = jobs                # one Job, or a list (one per task)
        self.indices = indices          # first index (consecutive tasks), or a list
        self.items = items
        self.attempts = attempts        # None, or a list of (retries used, bounces) per task
        self.received = 0
        self.kind = kind
        self.func = func
        if type(jobs) is list:
            timed = any(job.timeout is not None for job in jobs)
        else:
            timed = jobs.timeout is not None
        if timed:
            self.mode = _w.STAMPED
        elif type(jobs) is not list and jobs.chunksize is not None and len(items) > 1:
            self.mode = _w.RUNS         # the caller asked for chunks
        else:
            self.mode = _w.PRECISE

    def job(self, offset):
        return self.jobs[offset] if type(self.jobs) is list else self.jobs

    def index(self, offset):
        return self.indices[offset] if type(self.indices) is list else self.indices + offset

    def attempt(self, offset):
        return self.attempts[offset] if self.attempts is not None else (0, 0)


class WorkerSlot:
    __slots__ = ("slot", "process", "ring", "batches", "batch_numbers", "acknowledged", "budget",
                 "stopping", "timed_out", "restarts", "started_tasks", "alive", "ready",
                 "seen_done", "seen_busy")

    def __init__(self, slot):
        self.slot = slot
        self.process: Any = None
        self.ring: Any = None
        self.batches: collections.deque = collections.deque()
        self.batch_numbers = itertools.count(1)
        self.acknowledged = 0
        self.budget = None
        self.stopping = False
        self.timed_out = None
        self.restarts = 0
        self.started_tasks = 0
        # Until its sentinel fires: asking process.exitcode is a system call, and every call that
        # lets go of the GIL costs the pool thread a wait for it while callers are busy.
        self.alive = False
        # A spawned worker (a new interpreter) takes tens of milliseconds to start, and they do
        # not come up in order: it gets tasks only once it says it is ready, so the first task
        # goes to the first worker up. A forked one (also from a fork server, which forks them
        # in order, milliseconds apart) is taken as ready at once: waiting for its word would
        # only add a round trip.
        self.ready = False
        # The slot's task count and busy time in the ownership record when its last batch came
        # back (the engine's measure of recent task time).
        self.seen_done = 0
        self.seen_busy = 0


def as_buffer(block) -> Any:
    # The compiled Block exports the buffer protocol; its stub does not say so.
    return block


def find_task(batches, seq):
    for batch in batches:
        offset = seq - batch.first_seq
        if batch.received <= offset < len(batch.items):
            return batch, offset
    return None, 0


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
