"""Queues under load and under fault injection: many producers and consumers, a producer killed at a
random moment inside put(). Real processes; bounded by timeouts."""
import multiprocessing
import os
import random
import signal
import sys
import threading
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))   # support modules
import support_queues  # noqa: E402
from support_queues import joined  # noqa: E402

from shmproc import _core  # noqa: E402
from shmproc.queues import Empty, JoinableQueue, Queue  # noqa: E402

pytestmark = pytest.mark.stress
JOIN_TIMEOUT = 60


@pytest.mark.parametrize("window", [_core.QUEUE_CAPACITY, 4096], ids=["default-window", "tiny-window"])
def test_four_producers_four_consumers_a_million_messages(window):
    """No loss, no duplicate, and every consumer sees each producer's messages in order. Half the
    producers put one at a time, half put_many; half the consumers get, half get_many. With a tiny
    window the ring keeps growing past it, wrapping back and giving pages back, under all eight."""
    ctx = multiprocessing.get_context("fork")
    q, results = Queue(capacity=window), Queue()
    per_producer = 250_000
    producers = [ctx.Process(target=support_queues.int_producer,
                             args=(q, tag, per_producer, 1 if tag < 2 else 500)) for tag in range(4)]
    consumers = [ctx.Process(target=support_queues.int_consumer,
                             args=(q, results, 1 if index < 2 else 700)) for index in range(4)]
    for process in producers + consumers:
        process.start()
    joined(*producers)
    for _ in consumers:
        q.put(None)
    reports = [results.get(timeout=JOIN_TIMEOUT) for _ in consumers]
    joined(*consumers)
    for tag in range(4):
        pieces = [report[tag] for report in reports if tag in report]
        for numbers in pieces:
            assert np.all(np.diff(numbers) > 0), "a consumer saw a producer's messages out of order"
        received = np.sort(np.concatenate(pieces))
        assert np.array_equal(received, np.arange(per_producer)), "lost or duplicated messages"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_producer_killed_inside_put_loses_at_most_that_message(start_method):
    """SIGKILL a producer at random moments while it puts messages of all sizes (some spilled) into
    a small ring that grows, wraps and spills; another producer goes on. The queue keeps working, no
    message is torn, the killed producer's messages arrive as an unbroken prefix ending at most one
    message after the last put() that returned, and the counts agree (qsize, join)."""
    ctx = multiprocessing.get_context(start_method)
    rng = random.Random(1234)
    q = JoinableQueue(capacity=1 << 16)
    progress_block = _core.allocate(8 * 64)
    progress = np.frombuffer(progress_block, dtype=np.int64)
    rounds = 6 if start_method == "fork" else 3
    survivor = ctx.Process(target=support_queues.tagged_producer, args=(q, 63, 3000))
    survivor.start()
    received = {}

    def drain(quiet_for=0.0, until=0.0):
        """Take messages until the queue has been quiet for quiet_for and the time is past until."""
        last = time.monotonic()
        while time.monotonic() < max(last + quiet_for, until):
            try:
                tag, i, payload = q.get(timeout=0.01)
            except Empty:
                continue
            assert payload == support_queues.checkable_payload(tag, i), "torn message"
            received.setdefault(tag, []).append(i)
            q.task_done()
            last = time.monotonic()

    for tag in range(rounds):
        victim = ctx.Process(target=support_queues.tagged_producer,
                             args=(q, tag, 10**9, progress_block.handle()))
        victim.start()
        while progress[tag] == 0:
            drain(until=time.monotonic() + 0.001)
        # Keep reading while the victim writes, so that it is killed mid-copy, mid-wait or holding
        # the producer lock, wherever the moment falls.
        drain(until=time.monotonic() + rng.uniform(0.0, 0.3))
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(JOIN_TIMEOUT)
        assert victim.exitcode == -signal.SIGKILL
        drain(quiet_for=0.5)
    joined(survivor)
    drain(quiet_for=0.5)
    assert received[63] == list(range(3000)), "the surviving producer lost messages"
    for tag in range(rounds):
        numbers = received.get(tag, [])
        assert numbers == list(range(len(numbers))), "gap or reordering in a killed producer's messages"
        assert progress[tag] <= len(numbers) <= progress[tag] + 1
    q.put("still works")
    assert q.get(timeout=5) == "still works"
    q.task_done()
    # The counts too: a killed producer's half-published put is completed or absent, never half,
    # so qsize() is exact and join() (bounded: run in a thread) returns.
    head, tail, gets, puts, _, _ = _core.debug_ring_indices(q)
    assert (head, gets, q.qsize()) == (tail, puts, 0)
    joiner = threading.Thread(target=q.join, daemon=True)
    joiner.start()
    joiner.join(10)
    assert not joiner.is_alive(), "join() still waits for tasks nobody can finish"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_consumers_killed_while_a_grown_ring_wraps_leaps_and_rewinds(start_method):
    """SIGKILL consumers one after another at random moments, on a 4 KiB window that a producer
    keeps outrunning: each dead consumer is a stopped reader the producer must leap over, and each
    one may die inside a get, holding the consumer lock or, rewinding a drained ring, both locks.
    Nothing wedges, and the values taken by the consumers in turn are the producer's sequence with
    gaps only where a consumer died between taking a batch and recording it (at most one batch)."""
    ctx = multiprocessing.get_context(start_method)
    rng = random.Random(2026)
    q = Queue(capacity=4096)
    victims = 6 if start_method == "fork" else 3
    shared_block = _core.allocate(8 * (3 + 2 * victims))
    shared = np.frombuffer(shared_block, dtype=np.int64)
    shared[:] = 0
    shared[3:] = -1
    producer = ctx.Process(target=support_queues.counting_producer,
                           args=(q, shared_block.handle(), 1))
    producer.start()
    for k in range(victims):
        slot = 3 + 2 * k
        victim = ctx.Process(target=support_queues.recording_consumer,
                             args=(q, shared_block.handle(), slot, k))
        victim.start()
        deadline = time.monotonic() + JOIN_TIMEOUT
        while shared[slot] < 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(JOIN_TIMEOUT)
        assert victim.exitcode == -signal.SIGKILL
        time.sleep(rng.uniform(0.0, 0.05))             # the producer goes on with no reader
    shared[0] = 1
    joined(producer)
    rest = []
    while len(rest) == 0 or rest[-1] < shared[1] - 1:
        rest.extend(q.get_many(100_000, timeout=10))
    with pytest.raises(Empty):
        q.get_nowait()
    head, tail, gets, puts, _, _ = _core.debug_ring_indices(q)
    assert (head, gets, q.qsize(), q.empty()) == (tail, puts, 0, True), "counts off after the kills"
    assert shared[2] == 0, "a consumer received a batch that is not a run of consecutive values"
    assert rest == list(range(rest[0], shared[1])), "the last reader's messages are not a run"
    runs = [(shared[3 + 2 * k], shared[4 + 2 * k]) for k in range(victims)] + [(rest[0], rest[-1])]
    assert runs[0][0] == 0
    for (first, last), (next_first, _) in zip(runs, runs[1:]):
        assert first <= last < next_first <= last + 1 + 50, "lost more than the batch in flight"


@pytest.mark.parametrize("side", ["producer", "consumer"])
def test_process_killed_holding_a_ring_lock(ctx, side):
    """The lock word names its holder: the next process to wait on it notices the death within a
    sleep slice and takes the lock over; the ring itself is consistent at every instant."""
    q, ready = Queue(), Queue()
    q.put("queued before")
    child = ctx.Process(target=support_queues.take_ring_lock_and_die, args=(q, side == "producer", ready))
    child.start()
    ready.get(timeout=JOIN_TIMEOUT)
    child.join(JOIN_TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    q.put("after", timeout=10)
    assert q.get(timeout=10) == "queued before"
    assert q.get(timeout=10) == "after"


def test_writer_killed_inside_a_fresh_range_write(monkeypatch):
    """SIGKILL a producer while pwritev fills a fresh spill range (128 MB). Its slot stays held by
    a dead process until every other slot is taken; then it is recovered with its range punched
    out (a range with holes is never reused warm: a copy into a hole SIGBUSes on a full /dev/shm),
    and the queue goes on. Needs ~0.7 GB of memory for a moment (255 slots of 2 MiB)."""
    from support_segments import shm_directory_on_tmpfs

    def used(path):
        info = os.statvfs(path)
        return (info.f_blocks - info.f_bfree) * info.f_frsize

    ctx = multiprocessing.get_context("fork")
    with shm_directory_on_tmpfs(monkeypatch, "768m") as path:
        for _ in range(5):
            q = Queue(capacity=1 << 16)
            base = used(path)
            victim = ctx.Process(target=support_queues.put_large_array, args=(q, 128 << 20))
            victim.start()
            deadline = time.monotonic() + JOIN_TIMEOUT
            while used(path) - base < (16 << 20) and time.monotonic() < deadline:
                pass
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(JOIN_TIMEOUT)
            partial = used(path) - base
            if partial < (128 << 20):
                break                        # killed inside the write
            q.close()                        # it finished first: try again on a new queue
        else:
            pytest.skip("never caught the producer inside its write")
        assert partial >= 16 << 20
        small = [bytes([i]) * 20_000 for i in range(256)]      # each spilled into a 2 MiB range
        for item in small[:255]:
            q.put(item)                      # takes the 255 empty slots
        before = used(path)
        q.put(small[255])                    # none left: the dead writer's slot, punched, renewed
        assert used(path) - before <= (2 << 20) - partial
        assert [q.get(timeout=5) for _ in small] == small
        q.put(np.arange(3_000_000.0))
        assert np.array_equal(q.get(timeout=5), np.arange(3_000_000.0))
        q.close()
        del q
