"""shmproc.queues: Queue, SimpleQueue, JoinableQueue against multiprocessing's behaviour, in one
process and across real processes (fork and spawn)."""
import collections
import errno
import multiprocessing
import os
import pickle
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import support_queues
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support_queues import joined, started
from support_segments import mounted_tmpfs, shm_directory_on_tmpfs

from shmproc import _core
from shmproc.queues import JoinableQueue, Queue, SimpleQueue, TaskLostError

JOIN_TIMEOUT = 30


def mp_queue(kind, *args):
    return getattr(multiprocessing, kind)(*args)


def shm_queue(kind, *args):
    return {"Queue": Queue, "SimpleQueue": SimpleQueue, "JoinableQueue": JoinableQueue}[kind](*args)


@pytest.fixture(params=["multiprocessing", "shmproc"])
def make_queue(request):
    """The same behaviour test, run on multiprocessing's queue and on shmproc's."""
    return mp_queue if request.param == "multiprocessing" else shm_queue


# -- the API, same as multiprocessing's ---------------------------------------------------------

def test_fifo_order_and_types(make_queue):
    q = make_queue("Queue")
    items = [0, -1, 2**80, 1.5, float("inf"), "", "héllo", "\udc80", b"", b"x" * 100, None, True,
             (1, "a"), [1, [2]], {"k": {1, 2}}, bytearray(b"ab"), 3 + 4j]
    for item in items:
        q.put(item)
    got = [q.get(timeout=5) for _ in items]
    assert got == items
    assert [type(x) for x in got] == [type(x) for x in items]


def test_get_nowait_and_timeout_on_empty(make_queue):
    q = make_queue("Queue")
    with pytest.raises(queue.Empty):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get(False)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)


def test_maxsize_full_and_put_nowait(make_queue):
    q = make_queue("Queue", 2)
    q.put(1)
    q.put_nowait(2)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.05)
    assert q.get(timeout=5) == 1
    q.put(3, timeout=5)
    assert [q.get(timeout=5), q.get(timeout=5)] == [2, 3]


def test_qsize_empty_full(make_queue):
    q = make_queue("Queue", 3)
    assert q.empty() and not q.full() and q.qsize() == 0
    for i in range(3):
        q.put(i)
    deadline = time.monotonic() + 5
    while (q.qsize() < 3 or q.empty()) and time.monotonic() < deadline:   # mp's feeder thread lags
        time.sleep(0.01)
    assert q.qsize() == 3 and q.full() and not q.empty()
    q.get(timeout=5)
    assert q.qsize() == 2 and not q.full()


def test_closed_queue_raises_value_error(make_queue):
    q = make_queue("Queue")
    q.put(1)
    with pytest.raises(AssertionError):
        q.join_thread()
    q.close()
    with pytest.raises(ValueError, match="is closed"):
        q.put(2)
    with pytest.raises(ValueError, match="is closed"):
        q.get()
    q.join_thread()
    q.cancel_join_thread()


def test_simple_queue(make_queue):
    q = make_queue("SimpleQueue")
    assert q.empty()
    q.put([1, 2])
    q.put("x")
    assert not q.empty()
    assert q.get() == [1, 2] and q.get() == "x"
    q.close()
    with pytest.raises(OSError):
        q.get()


def test_joinable_queue_counts_tasks(make_queue):
    q = make_queue("JoinableQueue")
    q.put(1)
    q.put(2)
    q.get(timeout=5)
    q.task_done()
    q.get(timeout=5)
    q.task_done()
    q.join()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_generic_alias():
    assert Queue[int].__origin__ is Queue
    assert SimpleQueue[int].__origin__ is SimpleQueue


def test_negative_timeout_means_zero():
    # multiprocessing's rule: a negative timeout does not wait; NaN and non-numbers are errors.
    q = Queue(1)
    with pytest.raises(queue.Empty):
        q.get(timeout=-1)
    q.put(1, timeout=-1)
    with pytest.raises(queue.Full):
        q.put(2, timeout=-5)
    assert q.get(timeout=-1) == 1
    with pytest.raises(ValueError):
        q.get(timeout=float("nan"))
    with pytest.raises(TypeError):
        q.get(timeout="1")


def test_a_queue_shows_only_the_api_and_multiprocessings_private_names():
    # The core's internals (ring, handles, test hooks) are not on the public queue.
    for q in (Queue(), SimpleQueue(), JoinableQueue()):
        private = {name for name in dir(q) if name.startswith("_") and not name.startswith("__")}
        assert private == {"_reader", "_closed"}
        q.close()


def test_the_core_types_refuse_bare_construction():
    with pytest.raises(TypeError):
        _core.Ring()
    with pytest.raises(TypeError):
        _core.ConnectionEnd()
    with pytest.raises(ValueError, match="not made by Pipe"):
        _core.ConnectionEnd.__new__(_core.ConnectionEnd).recv()


def test_a_queue_subclass_that_skips_init_raises_instead_of_touching_memory():
    class Skipping(Queue):
        def __init__(self):
            pass

    q = Skipping()
    for call in (lambda: q.put(1), q.get_nowait, q.qsize, q.empty, q.full, lambda: pickle.dumps(q)):
        with pytest.raises(ValueError, match="never opened"):
            call()
    q.close()


# -- beyond multiprocessing: batches, sizes, errors in the caller ---------------------------------

def test_put_many_get_many():
    q = Queue()
    q.put_many(range(10_000))
    got = []
    while len(got) < 10_000:
        batch = q.get_many(3000, timeout=5)
        assert 1 <= len(batch) <= 3000
        got.extend(batch)
    assert got == list(range(10_000))
    with pytest.raises(queue.Empty):
        q.get_many(10, block=False)
    with pytest.raises(ValueError):
        q.get_many(0)


def test_put_many_respects_maxsize_and_reports_count():
    q = Queue(5)
    with pytest.raises(queue.Full) as info:
        q.put_many(range(8), block=False)
    assert info.value.count == 5
    assert q.get_many(100) == [0, 1, 2, 3, 4]


def test_put_many_stops_at_an_unpicklable_item():
    q = Queue()
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        q.put_many([1, 2, threading.Lock(), 4])
    assert q.get_many(10, block=False) == [1, 2]


def test_unpicklable_object_raises_in_put_and_leaves_queue_untouched():
    q = Queue()
    q.put("before")
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        q.put(lambda: 0)
    with pytest.raises(TypeError):
        q.put(threading.Lock())
    assert q.qsize() == 1
    assert q.get(timeout=5) == "before"
    q.put("after")
    assert q.get(timeout=5) == "after"


def test_message_larger_than_the_ring_goes_through():
    q = Queue(capacity=1 << 16)
    big = bytes(range(256)) * 4096          # 1 MiB through a 64 KiB ring
    q.put(big)
    q.put("small")
    assert q.get(timeout=5) == big
    assert q.get(timeout=5) == "small"


def test_large_messages_of_every_kind():
    """Spilled (larger than a quarter of the ring): exact bytes and str are not pickled there either."""
    q = Queue(capacity=1 << 16)
    items = [b"b" * 100_000, "s\u00e9" * 50_000, list(range(20_000)), 7 ** 200_000]
    for item in items:
        q.put(item)
    for item in items:
        got = q.get(timeout=5)
        assert got == item and type(got) is type(item)


def test_ndarray_round_trip_is_writable_and_equal():
    q = Queue(capacity=1 << 16)
    for array in (np.arange(10.0), np.arange(100_000, dtype=np.int32).reshape(100, 1000),
                  np.asfortranarray(np.ones((300, 200))), np.arange(30.0)[::3]):
        q.put(array)
        got = q.get(timeout=5)
        assert got.dtype == array.dtype and got.shape == array.shape
        assert np.array_equal(got, array)
        assert got.flags.writeable
        got[...] = 0                          # a private array: the sender's is untouched
        assert not np.array_equal(got, array) or not array.any()


def test_many_large_messages_outstanding():
    """More spilled messages in the queue than there are spill slots kept warm."""
    q = Queue(capacity=1 << 16)
    arrays = [np.full(50_000, i, dtype=np.int64) for i in range(100)]
    received = []
    for array in arrays:
        q.put(array)
        if q.qsize() > 40:
            received.append(q.get(timeout=5))
    while len(received) < len(arrays):
        received.append(q.get(timeout=5))
    assert all(np.array_equal(a, b) for a, b in zip(arrays, received))


# -- an unbounded queue never blocks put() (its ring grows while readers lag) ---------------------

def test_unbounded_put_never_waits_and_outlives_the_producer(ctx):
    """multiprocessing's Queue(maxsize=0) buffers whatever is put; so does ours, in shared memory:
    a child puts far more than the ring's window (and more large messages than there are spill
    slots) with nobody reading, exits, and every message is still there, in order."""
    q = Queue(capacity=1 << 16)
    count, arrays = 300_000, 300
    joined(started(ctx, support_queues.put_without_waiting_and_exit, q, count, arrays))
    assert q.qsize() == count + arrays
    assert q.get_many(count, timeout=5) == list(range(count))
    for i in range(arrays):
        got = q.get(timeout=5)
        assert got.shape == (5_000,) and (got == i).all()
    with pytest.raises(queue.Empty):
        q.get_nowait()


def test_growth_is_given_back_once_readers_catch_up():
    """Past its window the ring allocates pages as it goes; the reader that drains it gives them
    back at once, and so does a writer's wrap to the start once the readers have caught up.
    Measured as the kernel counts them (st_blocks)."""
    window = 1 << 16
    q = Queue(capacity=window)
    reserved, allocated = _core.debug_ring_memory(q)
    assert reserved == window
    base = allocated
    records = [b"%08d" % i + b"x" * 92 for i in range(50_000)]     # ~6 MB of records
    q.put_many(records)
    reserved, allocated = _core.debug_ring_memory(q)
    assert reserved > 5_000_000 and allocated - base > 5_000_000
    assert q.get_many(50_000, timeout=5) == records
    reserved, allocated = _core.debug_ring_memory(q)          # drained: no put needed
    assert reserved <= window and allocated - base <= window + 4096
    q.put_many(records[:30_000])                                    # grows again, partly read,
    assert q.get_many(20_000, timeout=5) == records[:20_000]
    assert _core.debug_ring_memory(q)[0] > 3_000_000
    q.put_many(range(1_000))                                        # then wraps to the start
    assert q.get_many(10_000, timeout=5) == records[20_000:30_000]
    assert q.get_many(1_000, timeout=5) == list(range(1_000))       # drained inside the window
    reserved, allocated = _core.debug_ring_memory(q)
    assert reserved <= window and allocated - base <= window + 4096
    for _ in range(3):                                          # past the window and back
        q.put_many(range(5_000))
    assert q.get_many(15_000, timeout=5) == list(range(5_000)) * 3
    reserved, allocated = _core.debug_ring_memory(q)
    assert reserved <= 2 * window and allocated - base <= 2 * window


def test_burst_after_a_wrap_with_a_stopped_reader():
    """A writer that went back to the start while a reader lagged, and then meets that reader
    stopped in the previous lap, leaps past the rest of that lap instead of waiting for it."""
    q = Queue(capacity=1 << 16)
    q.put_many(b"%07d" % i + b"x" * 93 for i in range(50_000))     # grow past the window
    assert q.get_many(49_000, timeout=5) == [b"%07d" % i + b"x" * 93 for i in range(49_000)]
    for i in range(1_000_000):                            # 16 MB: more than lies before the reader
        q.put_nowait(i)
    assert q.qsize() == 1_001_000
    assert q.get_many(1_000, timeout=5) == [b"%07d" % i + b"x" * 93 for i in range(49_000, 50_000)]
    assert q.get_many(1_000_000, timeout=5) == list(range(1_000_000))
    with pytest.raises(queue.Empty):
        q.get_nowait()


def test_a_reader_process_that_stops_in_the_previous_lap_is_leapt_over(ctx):
    q, results = Queue(capacity=1 << 16), Queue()
    stopped, go = ctx.Event(), ctx.Event()
    reader = started(ctx, support_queues.read_then_stop, q, 45_000, 50_000, 1_000_000, stopped, go,
                     results)
    q.put_many(b"%07d" % i for i in range(50_000))         # ~800 KB: past the 64 KiB window
    assert stopped.wait(30)
    for i in range(1_000_000):                            # never waits for the stopped reader
        q.put_nowait(i)
    go.set()
    assert results.get(timeout=60) == (True, True, True)
    joined(reader)


def test_readers_that_lag_and_stop_at_random_lose_nothing():
    """Bursts of puts against reads that lag, stop and catch up, on a 4 KiB window: every wrap,
    growth, leap and trim the ring can do, checked against a plain FIFO."""
    rng = random.Random(371)
    q = Queue(capacity=1 << 12)
    expected = collections.deque()
    counter = 0
    for _ in range(400):
        burst = [(counter + i) if rng.random() < 0.7 else b"z" * rng.randrange(1, 900)
                 for i in range(rng.choice((1, 10, 100, 1_000)))]
        counter += len(burst)
        q.put_many(burst)
        expected.extend(burst)
        take = min(len(expected), rng.choice((0, 0, 1, 50, 500, 5_000)))
        if take:
            assert q.get_many(take, timeout=5) == [expected.popleft() for _ in range(take)]
        assert q.qsize() == len(expected)
    assert q.get_many(len(expected) + 1, timeout=5) == list(expected)
    for _ in range(20):                                   # wraps with the ring drained: trimmed
        q.put(b"w" * 1_000)
        assert q.get(timeout=5) == b"w" * 1_000
    assert _core.debug_ring_memory(q)[0] <= 2 * 4096


def test_bounded_by_maxsize_not_by_bytes():
    """Queue(maxsize) blocks at maxsize messages, not when its window's bytes run out."""
    q = Queue(1000, capacity=1 << 12)
    for _ in range(1000):
        q.put_nowait(b"y" * 200)
    with pytest.raises(queue.Full):
        q.put_nowait(b"y")
    assert len(q.get_many(2000, timeout=5)) == 1000


def test_full_shared_memory_is_an_error_in_put_and_loses_nothing(monkeypatch):
    """Growth that /dev/shm cannot hold raises OSError(ENOSPC) in put(), never SIGBUS; what was put
    before is intact, and the queue works on once drained."""
    with mounted_tmpfs("1m") as path:
        if path is None:
            pytest.skip("cannot mount a tmpfs here (not root?)")
        monkeypatch.setenv("SHMPROC_SHM_DIR", path)
        q = Queue(capacity=1 << 14)
        put = 0
        with pytest.raises(OSError) as info:
            while True:
                q.put(put)
                put += 1
        assert info.value.errno == errno.ENOSPC
        assert put > 20_000                       # about 1 MiB of 16-byte records went in
        with pytest.raises(OSError):
            q.put_many(range(10_000))             # a batch that cannot grow is refused as well
        got = q.get_many(10 * put, timeout=5)
        assert got[:put] == list(range(put))      # put_many may have added a prefix of its batch
        assert got[put:] == list(range(len(got) - put))
        q.put("after")
        assert q.get(timeout=5) == "after"
        del q


def test_threads_share_a_queue():
    q = Queue()
    out = Queue()

    def consume():
        while (item := q.get(timeout=10)) is not None:
            out.put(item)

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(3000):
        q.put(i)
    for _ in threads:
        q.put(None)
    for thread in threads:
        thread.join(10)
    got = []
    while len(got) < 3000:
        got.extend(out.get_many(10_000, timeout=5))
    assert sorted(got) == list(range(3000))


# -- spill ranges: a fresh one is written with pwritev, a warm one through a mapping --------------

def test_every_layout_through_a_fresh_then_a_warm_range():
    """Each message three times in a new queue: into a fresh range (pwritev from the message's own
    buffers), then into the same range warm, through the lazy mapping this process's get() made
    (populated first), then through that mapping again. More out-of-band buffers than one pwritev
    call takes (IOV_MAX), empty ones, every alignment gap."""
    many_buffers = [np.arange(n, dtype=np.uint8) for n in range(1500)]
    items = [b"b" * 300_000, "s\u00e9" * 100_000, list(range(50_000)),
             np.arange(2_000_000, dtype=np.float64), many_buffers,
             {"stream": "x" * 30_000, "arrays": [np.ones(7), np.zeros(0), np.arange(70_001.0)]}]
    for item in items:
        q = Queue(capacity=1 << 16)
        for _ in range(3):
            q.put(item)
            got = q.get(timeout=5)
            if isinstance(item, np.ndarray):
                assert np.array_equal(got, item) and got.flags.writeable
            elif item is many_buffers:
                assert len(got) == len(item)
                assert all(np.array_equal(a, b) for a, b in zip(got, item))
            elif isinstance(item, dict):
                assert got["stream"] == item["stream"]
                assert all(np.array_equal(a, b) for a, b in zip(got["arrays"], item["arrays"]))
            else:
                assert got == item and type(got) is type(item)
            del got
        q.close()


def test_received_array_put_back_into_its_own_queue():
    """The source of the pwritev is then a mapping of the very file it writes to."""
    q = Queue(capacity=1 << 16)
    array = np.arange(3_000_000, dtype=np.float64)
    q.put(array)
    received = q.get(timeout=5)                  # a view of the queue's spill file
    q.put(received)                              # into a fresh range of the same file
    again = q.get(timeout=5)
    del received
    q.put(again)                                 # into the warm range just freed
    assert np.array_equal(again, array) and np.array_equal(q.get(timeout=5), array)


def test_warm_range_in_a_process_that_never_mapped_it(ctx):
    q, go = Queue(capacity=1 << 16), ctx.Event()
    first, second = np.arange(1_000_000, dtype=np.float64), np.arange(900_000, dtype=np.int64) * 3
    child = started(ctx, support_queues.put_wait_put, q, first, go, second)
    assert np.array_equal(q.get(timeout=JOIN_TIMEOUT), first)      # dropped: its slot is free again
    go.set()
    got = q.get(timeout=JOIN_TIMEOUT)
    assert np.array_equal(got, second) and got.flags.writeable
    joined(child)


@pytest.fixture
def small_tmpfs(monkeypatch):
    """Queues made in this test live on a 16 MiB tmpfs of their own."""
    with shm_directory_on_tmpfs(monkeypatch, "16m") as path:
        yield path


def used_bytes(path):
    info = os.statvfs(path)
    return (info.f_blocks - info.f_bfree) * info.f_frsize


def test_fresh_range_has_every_page_once_written(small_tmpfs):
    """The bytes past the message in its range are allocated too: a later, larger message copied
    into the range must not meet a hole (a store into one SIGBUSes when memory is short)."""
    q = Queue(capacity=1 << 16)
    before = used_bytes(small_tmpfs)
    q.put(b"x" * (5 << 19))                           # 2.5 MiB: a 4 MiB range
    assert used_bytes(small_tmpfs) - before >= 4 << 20
    assert q.get(timeout=5) == b"x" * (5 << 19)


def test_full_shm_is_enospc_in_put_and_gives_back_what_was_written(small_tmpfs):
    q = Queue(capacity=1 << 16)
    before = used_bytes(small_tmpfs)
    with pytest.raises(OSError) as info:
        q.put(b"x" * (24 << 20))
    assert info.value.errno == errno.ENOSPC and "shared memory" in str(info.value)
    assert used_bytes(small_tmpfs) == before          # the partly written range was punched out
    q.put("small")
    q.put(b"y" * (4 << 20))
    assert q.get(timeout=5) == "small"
    assert q.get(timeout=5) == b"y" * (4 << 20)


def test_full_shm_gives_back_warm_ranges_and_the_write_resumes(small_tmpfs):
    q = Queue(capacity=1 << 16)
    q.put(b"a" * (6 << 20))
    assert q.get(timeout=5) == b"a" * (6 << 20)       # its 8 MiB range stays, warm, for reuse
    q.put(b"b" * (10 << 20))                         # does not fit beside it
    assert q.get(timeout=5) == b"b" * (10 << 20)


def test_reused_range_on_a_full_shm_is_no_sigbus(small_tmpfs):
    """A message copied into a warm range while the tmpfs is full: every page it touches must
    already be there. In a child, so that a SIGBUS shows as its exit status."""
    code = textwrap.dedent("""
        import errno, os, sys
        from shmproc.queues import Queue
        q = Queue(capacity=1 << 16)
        q.put(b"a" * (5 << 19))                       # 2.5 MiB into a fresh 4 MiB range
        assert q.get(timeout=5) == b"a" * (5 << 19)
        with open(os.path.join(sys.argv[1], "filler"), "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"f" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        q.put(b"b" * ((4 << 20) - 4096))              # reuses the range, up to its last page
        assert q.get(timeout=5) == b"b" * ((4 << 20) - 4096)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code, small_tmpfs], capture_output=True, text=True,
                         timeout=JOIN_TIMEOUT)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert out.stdout.strip() == "ok"


# -- across processes ------------------------------------------------------------------------------

def test_child_puts_parent_gets(ctx):
    q = Queue()
    child = started(ctx, support_queues.put_range, q, 0, 20_000)
    assert [q.get(timeout=JOIN_TIMEOUT) for _ in range(20_000)] == list(range(20_000))
    joined(child)


def test_parent_puts_child_gets(ctx):
    q, results = Queue(), Queue()
    child = started(ctx, support_queues.get_and_report, q, results, 100, JOIN_TIMEOUT)
    for i in range(100):
        q.put({"i": i})
    assert [results.get(timeout=JOIN_TIMEOUT) for _ in range(100)] == [{"i": i} for i in range(100)]
    joined(child)


def test_batches_across_processes(ctx):
    q = Queue()
    child = started(ctx, support_queues.put_many_range, q, 0, 50_000, 1000)
    got = []
    while len(got) < 50_000:
        got.extend(q.get_many(4096, timeout=JOIN_TIMEOUT))
    assert got == list(range(50_000))
    joined(child)


def test_message_outlives_its_sender(ctx):
    q = Queue()
    big = np.arange(2_000_000, dtype=np.float64)       # spilled: 16 MB
    child = started(ctx, support_queues.put_and_exit, q, big)
    joined(child)
    got = q.get(timeout=JOIN_TIMEOUT)
    assert np.array_equal(got, big) and got.flags.writeable


def test_ndarray_to_child(ctx):
    q, results = Queue(), Queue()
    array = np.arange(3_000_000, dtype=np.float64).reshape(1000, 3000)
    child = started(ctx, support_queues.sum_array, q, results)
    q.put(array)
    total, shape, dtype, writeable = results.get(timeout=JOIN_TIMEOUT)
    assert (total, shape, dtype, writeable) == (float(array.sum()), array.shape, array.dtype.str, True)
    joined(child)


def test_round_trips_over_two_queues(ctx):
    requests, replies = Queue(), Queue()
    child = started(ctx, support_queues.echo_queue, requests, replies, 500)
    for i in range(500):
        requests.put(i)
        assert replies.get(timeout=JOIN_TIMEOUT) == i
    joined(child)


def test_joinable_queue_across_processes(ctx):
    q, done = JoinableQueue(), Queue()
    workers = [started(ctx, support_queues.work_joinable, q, done) for _ in range(2)]
    for i in range(200):
        q.put(i)
    for _ in workers:
        q.put(None)
    q.join()
    assert sorted(done.get_many(1000, timeout=5)) == sorted(2 * i for i in range(200))
    joined(*workers)


def test_join_reports_tasks_held_by_a_dead_consumer(ctx):
    """multiprocessing's join() waits forever once a consumer dies between get() and task_done().
    Ours raises TaskLostError within a sleep slice, naming the process and the tasks it held; a
    task_done() from anyone, for each task redone, lets join() return."""
    q, ready = JoinableQueue(), Queue()
    for i in range(5):
        q.put(i)
    child = started(ctx, support_queues.take_tasks_and_die, q, 3, 1, ready)
    pid = ready.get(timeout=JOIN_TIMEOUT)
    child.join(JOIN_TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    assert q.get_many(2, timeout=5) == [3, 4]
    q.task_done()
    q.task_done()
    with pytest.raises(TaskLostError) as raised:
        q.join()
    assert (raised.value.pids, raised.value.count) == ([pid], 2)
    assert "2 unfinished tasks" in str(raised.value)
    q.task_done()                                  # one redone here: one still lost
    with pytest.raises(TaskLostError) as raised:
        q.join()
    assert raised.value.count == 1
    q.task_done()
    q.join()
    with pytest.raises(ValueError):
        q.task_done()


def test_join_waits_for_live_consumers_holding_tasks(ctx):
    """Tasks held by a live process are not lost: join() waits for them through several of its
    sleep slices (each of which looks for dead holders), then returns."""
    q = JoinableQueue()
    q.put_many(range(3))
    worker = started(ctx, support_queues.work_slowly, q, 0.25, 3)
    q.join()
    assert q.qsize() == 0
    joined(worker)


@pytest.mark.parametrize("blocked_in", ["get", "put"])
def test_ctrl_c_interrupts_a_blocked_call(ctx, blocked_in):
    q, ready, result = Queue(1), Queue(), Queue()
    if blocked_in == "put":
        q.put("fills it")
        target = support_queues.blocked_put_reports_interrupt
    else:
        target = support_queues.blocked_get_reports_interrupt
    child = started(ctx, target, q, ready, result)
    pid = ready.get(timeout=JOIN_TIMEOUT)
    time.sleep(0.3)                          # let it fall asleep in the futex
    sent = time.monotonic()
    os.kill(pid, signal.SIGINT)
    outcome = result.get(timeout=10)
    assert outcome[0] == "interrupted"
    assert time.monotonic() - sent < 5
    joined(child)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_shmproc_processes_under_every_start_method(start_method):
    """Queues reach children started by shmproc's own Process, forkserver included; the parent
    drops its queue objects right after start(), as programs do."""
    import shmproc
    shm_ctx = shmproc.get_context(start_method)
    q, results = shm_ctx.Queue(), shm_ctx.Queue()
    child = started(shm_ctx, support_queues.get_and_report, q, results, 3, JOIN_TIMEOUT)
    q.put_many([1, "two", np.arange(3.0)])
    got = [results.get(timeout=JOIN_TIMEOUT) for _ in range(3)]
    assert got[:2] == [1, "two"] and np.array_equal(got[2], np.arange(3.0))
    joined(child)


def test_queue_pickles_through_a_queue():
    carrier, inner = Queue(), Queue()
    carrier.put(inner)
    received = carrier.get(timeout=5)
    received.put("through")
    assert inner.get(timeout=5) == "through"


# -- the model: queue.Queue ----------------------------------------------------------------------

class QueueAgainstModel(RuleBasedStateMachine):
    """Single-process sequences of operations give the same results as queue.Queue's."""

    def __init__(self):
        super().__init__()
        self.maxsize = 4
        self.real = Queue(self.maxsize, capacity=1 << 12)
        self.model = queue.Queue(self.maxsize)

    items = st.one_of(st.integers(), st.binary(max_size=700), st.text(max_size=50),
                      st.lists(st.integers(), max_size=5), st.none())

    @rule(item=items)
    def put_nowait(self, item):
        try:
            self.model.put_nowait(item)
            expected = None
        except queue.Full:
            expected = queue.Full
        try:
            self.real.put_nowait(item)
            got = None
        except queue.Full:
            got = queue.Full
        assert got is expected

    @rule()
    def get_nowait(self):
        try:
            expected = self.model.get_nowait()
        except queue.Empty:
            expected = queue.Empty
        try:
            got = self.real.get_nowait()
        except queue.Empty:
            got = queue.Empty
        assert got == expected

    @precondition(lambda self: not self.model.full())
    @rule(items=st.lists(items, max_size=3))
    def put_many(self, items):
        items = items[:self.maxsize - self.model.qsize()]
        for item in items:
            self.model.put_nowait(item)
        self.real.put_many(items, block=False)

    @rule(limit=st.integers(1, 5))
    def get_many(self, limit):
        expected = []
        while len(expected) < limit and not self.model.empty():
            expected.append(self.model.get_nowait())
        try:
            got = self.real.get_many(limit, block=False)
        except queue.Empty:
            got = []
        assert got == expected

    @invariant()
    def sizes_agree(self):
        assert self.real.qsize() == self.model.qsize()
        assert self.real.empty() == self.model.empty()
        assert self.real.full() == self.model.full()


TestQueueAgainstModel = QueueAgainstModel.TestCase
TestQueueAgainstModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
