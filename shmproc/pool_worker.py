"""The loop a pool worker runs: take a batch of tasks from its own ring, run them, send results.

A worker owns one slot of the pool's ownership record (shared memory, see shmproc/pool_engine.py):
before it calls the user's function it writes the task's sequence number and the time; after, it
clears the time and counts the task. When the worker dies, the parent reads the slot and knows which
task was running (lost), which ones before it finished (their results are in the result ring, or
went down with the worker), and which ones after it never started (sent again elsewhere, no harm).

Results go back in one ring record per batch (or sooner, when a batch runs long), so a tiny task
costs a few list appends, not a message. A result that is not a plain scalar is pickled on its own
here, so that one result which cannot be pickled (or unpickled in the parent) fails its own task
and not its neighbours. Every result object sent stays referenced here until the parent
acknowledges that it has unpickled it: a shared array the worker created and dropped is still alive
when the parent attaches it.
"""
import itertools
import os
import pickle
import signal
import time

from shmproc import _core

__all__ = ["worker_main", "APPLY", "MAP", "STARMAP", "PRECISE", "STAMPED", "RUNS", "RUN_LENGTH",
           "RECORD_FIELDS", "FIELD_SEQ", "FIELD_STARTED", "FIELD_DONE", "FIELD_BUSY",
           "FIELD_SKIP_FROM", "PLAIN", "PICKLED", "FAILED", "UNPICKLABLE", "SKIPPED", "READY"]

# Task kinds: how a task's item becomes a call.
APPLY, MAP, STARMAP = 0, 1, 2

# Batch modes: what the record tells of each task. PRECISE: each task's number, one start time
# per batch; STAMPED: each task's number and start time (tasks with a timeout); RUNS: the number
# of the first task of each run of RUN_LENGTH (chunked maps: no work at all around a call).
PRECISE, STAMPED, RUNS = 0, 1, 2

# The ownership record: RECORD_FIELDS int64 words per worker slot.
RECORD_FIELDS = 5
FIELD_SEQ = 0        # sequence number of the task taken last
FIELD_STARTED = 1    # monotonic ns when it started; 0 once it has finished
FIELD_DONE = 2       # tasks finished by this slot (all its workers)
FIELD_BUSY = 3       # ns spent in tasks by this slot
# Written by the parent: calls (APPLY tasks) numbered from this one on are not to be started
# (0: none); the worker reports them SKIPPED. shutdown(cancel_futures=True) uses it to cancel the
# calls a worker holds but has not started; the worker's report, not the parent's guess, says
# which ones those were.
FIELD_SKIP_FROM = 4

# How each result travels: the object itself, or pickled here (a value, or a failure; or, for a
# value that could not be pickled, both errors the parent may report: see _encode_unpicklable).
PLAIN, PICKLED, FAILED, UNPICKLABLE, SKIPPED = "v", "p", "e", "u", "s"
_PLAIN_TYPES: frozenset[type] = frozenset((int, float, str, bytes, bool, type(None), complex))

# The batch number of a worker's first message: it has started (and run its initializer).
READY = 0

# A batch that runs longer than this sends what it has finished so far.
_FLUSH_AFTER_NS = 2_000_000


def _pickled(obj):
    _core.register_connection_reducer()     # a Connection pickles as multiprocessing's, not as a number
    buffers: list = []
    data = pickle.dumps(obj, 5, buffer_callback=buffers.append)
    return (data, buffers) if buffers else data


def _failure_classes():
    """multiprocessing.pool's ExceptionWithTraceback and MaybeEncodingError, imported when a task
    first fails: that module brings multiprocessing.connection, tempfile and shutil with it, some
    15 million instructions, 7% of what a spawned worker executes before its first task."""
    from shmproc.pool_results import MaybeEncodingError, _mp_pool
    return _mp_pool.ExceptionWithTraceback, MaybeEncodingError


def _encode_failure(exc):
    ExceptionWithTraceback, MaybeEncodingError = _failure_classes()
    try:
        return _pickled(ExceptionWithTraceback(exc, exc.__traceback__))
    except BaseException as pickling_error:
        # BaseException too: a __reduce__ may raise SystemExit, and the worker must live on.
        wrapped = MaybeEncodingError(pickling_error, exc)
        return _pickled(ExceptionWithTraceback(wrapped, exc.__traceback__))


def _encode_value(value):
    try:
        return PICKLED, _pickled(value)
    except BaseException as exc:
        # SystemExit from a __reduce__ included: it fails this result, as in the standard
        # executor, instead of ending the worker.
        return UNPICKLABLE, _encode_unpicklable(exc, value)


def _encode_unpicklable(exc, value):
    """A result that could not be pickled. multiprocessing.Pool reports MaybeEncodingError,
    concurrent.futures the error itself with this worker's traceback: both travel, and the
    parent's engine picks the one its pool reports (the error itself may not pickle: then None)."""
    ExceptionWithTraceback, MaybeEncodingError = _failure_classes()
    try:
        wrapped = MaybeEncodingError(exc, value)
    except BaseException:       # the value's repr() failed too
        wrapped = MaybeEncodingError(exc, f"<unrepresentable {type(value).__name__}>")
    try:
        return _pickled((ExceptionWithTraceback(exc, exc.__traceback__), wrapped))
    except BaseException:
        return _pickled((None, wrapped))


def worker_main(slot, tasks, results, record_block, initializer, initargs, announce=False):
    """The target of every worker process. Returns when the parent sends None. announce: say
    when ready (the parent waits for that before it sends tasks)."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    record = memoryview(record_block).cast("q")
    base = slot * RECORD_FIELDS
    if initializer is not None:
        initializer(*initargs)
    held: list = []          # (batch number, results) sent but not yet acknowledged
    clock = time.monotonic_ns
    pid = os.getpid()
    if announce:
        results.put((slot, pid, READY, 0, (), None))
    while True:
        message = tasks.get()
        if message is None:
            return
        acknowledged = message[0]
        if held and held[0][0] <= acknowledged:
            held = [entry for entry in held if entry[0] > acknowledged]
        if len(message) == 1:
            continue
        _, batch, kind, func, first_seq, items, mode = message
        if mode == STAMPED:
            _run_stamped(batch, kind, func, first_seq, items, record, base, clock, results,
                         slot, held, pid)
        else:
            _run_fast(batch, kind, func, first_seq, items, record, base, clock, results, slot,
                      held, pid, mode == RUNS)
        # Drop the batch before blocking for the next one: a task's arguments (and its function)
        # must not outlive it in an idle worker (their finalizers may be what the caller waits on).
        message = func = items = None


def _run_fast(batch, kind, func, first_seq, items, record, base, clock, results, slot, held,
              pid, by_runs):
    """A batch whose tasks have no timeout: the record gets each task's number (by_runs: the
    number of the first task of each run of RUN_LENGTH), and one start time for the whole batch
    (cleared when the batch ends), so a death names its task (by_runs: its run). Tasks run in
    runs with nothing but the record write around each call (by_runs: nothing at all); the clock
    is read between runs (to send early what a long batch has finished)."""
    values: list = []
    failures: dict = {}                 # offset -> encoded failure (None: skipped)
    seq_field = base + FIELD_SEQ
    started = clock()
    record[base + FIELD_STARTED] = started
    flush_at = started + _FLUSH_AFTER_NS
    sent_upto = 0
    count = len(items)
    position = 0
    skipped = 0
    while position < count:
        stop = min(position + RUN_LENGTH, count)
        try:
            if by_runs:
                record[seq_field] = first_seq + position
                if kind == MAP:
                    values.extend(map(func, items[position:stop]))
                else:
                    values.extend(itertools.starmap(func, items[position:stop]))
            else:
                _run_tasks(kind, func, items, position, stop, first_seq, record, seq_field,
                           values)
        except _SkipRest:
            # Told not to start the calls from len(values) on: the batch ends here.
            skipped = count - len(values)
            for offset in range(len(values), count):
                failures[offset] = None
            values.extend([None] * skipped)
        except BaseException as exc:
            # The task at len(values) raised: its failure takes its place; go on after it.
            failures[len(values)] = _encode_failure(exc)
            values.append(None)
        position = len(values)
        if position % RUN_LENGTH and position < stop:
            continue
        now = clock()
        if now >= flush_at and position < count:
            _account(record, base, position - sent_upto, now - started)
            _send_run(results, slot, batch, first_seq, values, sent_upto, position, failures,
                      held, pid)
            sent_upto = position
            started = now
            flush_at = now + _FLUSH_AFTER_NS
    record[base + FIELD_STARTED] = 0
    _account(record, base, count - sent_upto - skipped, clock() - started)
    _send_run(results, slot, batch, first_seq, values, sent_upto, count, failures, held, pid)


RUN_LENGTH = 64


def _run_tasks(kind, func, items, start, stop, first_seq, record, seq_field, values):
    append = values.append
    seq = first_seq + start
    if kind == MAP:
        for item in items[start:stop]:
            record[seq_field] = seq
            seq += 1
            append(func(item))
    elif kind == STARMAP:
        for item in items[start:stop]:
            record[seq_field] = seq
            seq += 1
            append(func(*item))
    else:
        skip_field = seq_field - FIELD_SEQ + FIELD_SKIP_FROM
        for item in items[start:stop]:
            skip_from = record[skip_field]
            if skip_from and seq >= skip_from:
                raise _SkipRest
            record[seq_field] = seq
            seq += 1
            append(item[0](*item[1], **item[2]))


class _SkipRest(Exception):
    """The parent asked this worker not to start the batch's calls from the next one on."""


def _send_run(results, slot, batch, first_seq, values, start, stop, failures, held, pid):
    """Send the results of tasks start..stop; flags only when some are not plain."""
    run = values[start:stop] if start or stop < len(values) else values
    flags = None
    if failures or not _core.types_within(run, _PLAIN_TYPES):
        flags = []
        for offset, value in enumerate(run):
            if start + offset in failures:
                failure = run[offset] = failures.pop(start + offset)
                flags.append(FAILED if failure is not None else SKIPPED)
            elif type(value) in _PLAIN_TYPES:
                flags.append(PLAIN)
            else:
                flags.append(PICKLED)
    _send(results, slot, batch, first_seq + start, run, flags, held, pid)


def _account(record, base, done, busy_ns):
    record[base + FIELD_DONE] += done
    record[base + FIELD_BUSY] += busy_ns


def _run_stamped(batch, kind, func, first_seq, items, record, base, clock, results, slot, held,
                 pid):
    """A batch whose tasks have a timeout: each task's start time is in the record, for the
    parent to measure it against."""
    values: list = []
    flags: list = []
    plain = True
    sent_upto = 0
    flush_at = clock() + _FLUSH_AFTER_NS
    for offset, item in enumerate(items):
        if kind == APPLY:
            skip_from = record[base + FIELD_SKIP_FROM]
            if skip_from and first_seq + offset >= skip_from:
                # Told not to start the calls from this one on (see FIELD_SKIP_FROM).
                values.extend([None] * (len(items) - offset))
                flags.extend([SKIPPED] * (len(items) - offset))
                plain = False
                break
        record[base + FIELD_SEQ] = first_seq + offset
        started = clock()
        record[base + FIELD_STARTED] = started
        try:
            if kind == MAP:
                value = func(item)
            elif kind == STARMAP:
                value = func(*item)
            else:
                value = item[0](*item[1], **item[2])
        except BaseException as exc:
            values.append(_encode_failure(exc))
            flags.append(FAILED)
            plain = False
        else:
            values.append(value)
            if type(value) in _PLAIN_TYPES:
                flags.append(PLAIN)
            else:
                flags.append(PICKLED)
                plain = False
        finished = clock()
        record[base + FIELD_STARTED] = 0
        _account(record, base, 1, finished - started)
        if finished >= flush_at and offset + 1 < len(items):
            _send(results, slot, batch, first_seq + sent_upto, values[sent_upto:],
                  None if plain else flags[sent_upto:], held, pid)
            sent_upto = offset + 1
            flush_at = finished + _FLUSH_AFTER_NS
    _send(results, slot, batch, first_seq + sent_upto, values[sent_upto:],
          None if plain else flags[sent_upto:], held, pid)


def _send(results, slot, batch, first_seq, values, flags, held, pid):
    # Shared objects in the results are pickled here, before the put: their handles must still be
    # deposited with the keeper, so that a result outlives this worker (docs/internals/handles.md).
    mark = _core.handles_mark()
    if flags is not None:
        for index, flag in enumerate(flags):
            if flag == PICKLED:
                held.append((batch, values[index]))
                flags[index], values[index] = _encode_value(values[index])
        flags = "".join(flags)
        _core.deposit_handles_since(results, mark)
    try:
        results.put((slot, pid, batch, first_seq, values, flags))
    except Exception as exc:
        # Only a failure of the ring itself is left (every object is plain or pickled already).
        import traceback
        traceback.print_exc()
        failure = _pickled(_failure_classes()[1](exc, "results"))
        results.put((slot, pid, batch, first_seq, [failure] * len(values), FAILED * len(values)))
