"""Semantics of the shared synchronization primitives, in one process and across processes."""
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
import support_synchronize as support

import shmproc
from shmproc._core import allocate

JOIN = 20  # seconds: a generous bound on any child that should finish


def shared_int64(count):
    block = allocate(8 * count)
    return block, np.frombuffer(block, dtype=np.int64, count=count)


def start(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


def finish(p):
    p.join(JOIN)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail(f"child {p.pid} did not finish within {JOIN}s")
    return p.exitcode


def stop(p):
    p.kill()
    p.join(JOIN)


# --- Lock ------------------------------------------------------------------------------------

def test_lock_acquire_release_and_repr():
    lock = shmproc.Lock()
    assert repr(lock) == "<Lock(owner=None)>"
    assert lock.acquire() is True
    assert repr(lock) == "<Lock(owner=MainProcess)>"
    assert lock.acquire(False) is False
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    with lock:
        assert lock.acquire(block=False) is False
    assert lock.acquire(block=False) is True
    lock.release()


def test_lock_release_unlocked_is_value_error():
    with pytest.raises(ValueError, match="released too many times"):
        shmproc.Lock().release()


def test_lock_may_be_released_by_another_thread():
    lock = shmproc.Lock()
    lock.acquire()
    t = threading.Thread(target=lock.release)
    t.start()
    t.join(JOIN)
    assert lock.acquire(False)
    lock.release()


def test_lock_repr_other_thread():
    lock = shmproc.Lock()
    held = threading.Event()
    done = threading.Event()

    def hold():
        lock.acquire()
        held.set()
        done.wait(JOIN)
        lock.release()

    t = threading.Thread(target=hold)
    t.start()
    held.wait(JOIN)
    assert repr(lock) == "<Lock(owner=SomeOtherThread)>"
    done.set()
    t.join(JOIN)


def held_lock(kind):
    lock = kind()
    threading.Thread(target=lock.acquire).start()    # held by another thread (that ended)
    return lock


@pytest.mark.parametrize("negative", [-1, -0.5, float("-inf")])
def test_negative_timeouts_mean_zero(negative):
    # multiprocessing's rule (its semaphores clamp a negative timeout to 0): try once, do not wait.
    for lock in (held_lock(shmproc.Lock), held_lock(shmproc.RLock), shmproc.Semaphore(0)):
        assert lock.acquire(timeout=negative) is False
    free = shmproc.Lock()
    assert free.acquire(timeout=negative) is True
    assert shmproc.Event().wait(negative) is False
    cond = shmproc.Condition()
    with cond:
        assert cond.wait(negative) is False
        assert cond.wait_for(lambda: False, negative) is False
    barrier = shmproc.Barrier(2, timeout=negative)
    with pytest.raises(shmproc.BrokenBarrierError):
        barrier.wait()
    assert barrier.broken


@pytest.mark.parametrize("bad, error", [(float("nan"), ValueError), ("1", TypeError)])
def test_nan_and_non_number_timeouts_are_errors(bad, error):
    for acquire in (shmproc.Lock().acquire, shmproc.RLock().acquire, shmproc.Semaphore(0).acquire):
        with pytest.raises(error):
            acquire(timeout=bad)
    with pytest.raises(error):
        shmproc.Event().wait(bad)
    with pytest.raises(error):
        shmproc.Barrier(2).wait(bad)
    assert shmproc.Barrier(2, timeout=bad).parties == 2     # checked at wait(), as multiprocessing
    cond = shmproc.Condition()
    with cond, pytest.raises(error):
        cond.wait(bad)


def test_lock_timeout_is_honoured():
    lock = shmproc.Lock()
    lock.acquire()
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    assert time.monotonic() - t0 >= 0.19
    lock.release()


def test_lock_mutual_exclusion_across_processes(ctx):
    lock = shmproc.Lock()
    block, counter = shared_int64(1)
    children = [start(ctx, support.increment_under_lock, lock, block.handle(), 5000) for _ in range(2)]
    for _ in range(5000):
        with lock:
            counter[0] += 1
    assert [finish(p) for p in children] == [0, 0]
    assert counter[0] == 15000


def test_lock_held_by_child_blocks_parent(ctx):
    lock, ready = shmproc.Lock(), shmproc.Event()
    p = start(ctx, support.hold_lock_forever, lock, ready)
    try:
        assert ready.wait(JOIN)
        assert lock.acquire(timeout=0.1) is False
        assert repr(lock) == "<Lock(owner=SomeOtherProcess)>"
    finally:
        stop(p)


def test_lock_pickles_for_any_destination():
    lock = shmproc.Lock()
    clone = pickle.loads(pickle.dumps(lock))
    lock.acquire()
    assert clone.acquire(False) is False
    clone.release()
    assert lock.acquire(False) is True
    lock.release()


# --- owner death -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_waiter_gets_owner_died_error_within_a_second(ctx, kind):
    lock, ready = getattr(shmproc, kind)(), shmproc.Event()
    p = start(ctx, support.hold_lock_forever, lock, ready)
    assert ready.wait(JOIN)
    killed_at = None

    def kill_soon():
        nonlocal killed_at
        time.sleep(0.2)
        killed_at = time.monotonic()
        os.kill(p.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    with pytest.raises(shmproc.OwnerDiedError) as info:
        lock.acquire(timeout=10)
    noticed = time.monotonic() - killed_at
    killer.join()
    assert info.value.pid == p.pid
    assert noticed < 1.0
    # The lock was recovered and released: usable again at once.
    assert lock.acquire(timeout=1) is True
    lock.release()
    p.join(JOIN)


def test_owner_death_before_anyone_waits_is_reported_to_the_next_acquirer(ctx):
    lock, ready = shmproc.Lock(), shmproc.Event()
    p = start(ctx, support.hold_lock_and_die, lock, ready)
    p.join(JOIN)
    assert p.exitcode == -signal.SIGKILL
    with pytest.raises(shmproc.OwnerDiedError):
        lock.acquire(timeout=5)
    assert lock.acquire(False)
    lock.release()


def test_only_one_of_many_waiters_recovers_a_dead_owners_lock(ctx):
    lock, ready = shmproc.Lock(), shmproc.Event()
    p = start(ctx, support.hold_lock_forever, lock, ready)
    assert ready.wait(JOIN)
    outcomes = []

    def waiter():
        try:
            got = lock.acquire(timeout=5)
            outcomes.append("acquired" if got else "timeout")
            if got:
                lock.release()
        except shmproc.OwnerDiedError:
            outcomes.append("died")

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    os.kill(p.pid, signal.SIGKILL)
    for t in threads:
        t.join(JOIN)
    p.join(JOIN)
    assert sorted(outcomes) == ["acquired"] * 3 + ["died"]


# --- RLock -----------------------------------------------------------------------------------

def test_rlock_recursion_and_repr():
    rlock = shmproc.RLock()
    assert repr(rlock) == "<RLock(None, 0)>"
    with rlock:
        with rlock:
            assert repr(rlock) == "<RLock(MainProcess, 2)>"
            assert rlock._count() == 2
    assert repr(rlock) == "<RLock(None, 0)>"


def test_rlock_release_not_owned():
    with pytest.raises(AssertionError):
        shmproc.RLock().release()


def test_rlock_release_from_another_process_is_refused(ctx):
    rlock, refused = shmproc.RLock(), shmproc.Event()
    rlock.acquire()
    assert finish(start(ctx, support.release_rlock, rlock, refused)) == 0
    assert refused.is_set()
    assert rlock._count() == 1
    rlock.release()


def test_rlock_other_thread_cannot_acquire_or_release():
    rlock = shmproc.RLock()
    rlock.acquire()
    results = []

    def other():
        results.append(rlock.acquire(timeout=0.05))
        try:
            rlock.release()
        except AssertionError:
            results.append("refused")

    t = threading.Thread(target=other)
    t.start()
    t.join(JOIN)
    assert results == [False, "refused"]
    rlock.release()


# --- Semaphore -------------------------------------------------------------------------------

def test_semaphore_counts_and_repr():
    sem = shmproc.Semaphore(2)
    assert repr(sem) == "<Semaphore(value=2)>"
    assert sem.acquire() and sem.acquire()
    assert sem.acquire(False) is False
    assert sem.acquire(timeout=0.01) is False
    assert sem.get_value() == 0
    sem.release()
    sem.release()
    sem.release()          # unbounded: may exceed the initial value
    assert sem.get_value() == 3


def test_semaphore_rejects_negative_initial_value():
    with pytest.raises(ValueError):
        shmproc.Semaphore(-1)


def test_bounded_semaphore_over_release():
    sem = shmproc.BoundedSemaphore(2)
    assert repr(sem) == "<BoundedSemaphore(value=2, maxvalue=2)>"
    with pytest.raises(ValueError, match="released too many times"):
        sem.release()
    sem.acquire()
    sem.release()
    assert sem.get_value() == 2


def test_semaphore_limits_concurrency_across_processes(ctx):
    sem, peak_lock = shmproc.Semaphore(2), shmproc.Lock()
    block, peak = shared_int64(2)
    children = [start(ctx, support.semaphore_worker, sem, peak_lock, block.handle(), 30) for _ in range(4)]
    assert [finish(p) for p in children] == [0] * 4
    assert peak[0] == 0
    assert peak[1] == 2


# --- Event -----------------------------------------------------------------------------------

def test_event_basics_and_repr():
    event = shmproc.Event()
    assert not event.is_set()
    assert "unset" in repr(event)
    assert event.wait(0.01) is False
    event.set()
    assert event.is_set() and event.wait() is True and event.wait(0) is True
    assert repr(event).endswith(" set>")
    event.clear()
    assert not event.is_set()


def test_event_set_by_another_process_wakes_waiter(ctx):
    event = shmproc.Event()
    p = start(ctx, support.set_event_later, event, 0.1)
    assert event.wait(JOIN) is True
    assert finish(p) == 0


def test_event_wakes_all_waiters(ctx):
    event = shmproc.Event()
    seen = [shmproc.Event() for _ in range(3)]
    children = [start(ctx, support.wait_event, event, s, JOIN) for s in seen]
    time.sleep(0.2)
    event.set()
    assert [finish(p) for p in children] == [0, 0, 0]
    assert all(s.is_set() for s in seen)


# --- Condition -------------------------------------------------------------------------------

def test_condition_requires_the_lock():
    cond = shmproc.Condition()
    with pytest.raises(AssertionError):
        cond.wait(0.01)
    with pytest.raises(AssertionError):
        cond.notify()
    assert repr(cond) == "<Condition(<RLock(None, 0)>, 0)>"


def test_condition_rejects_foreign_locks():
    with pytest.raises(TypeError):
        shmproc.Condition(threading.Lock())


def test_condition_wait_timeout_and_rlock_depth_restored():
    cond = shmproc.Condition(shmproc.RLock())
    with cond:
        with cond:
            assert cond.wait(0.05) is False
            assert cond._lock._count() == 2 if hasattr(cond, "_lock") else True


def test_condition_notify_wakes_exactly_n_threads():
    cond = shmproc.Condition(shmproc.Lock())
    woken = []
    registered = threading.Semaphore(0)

    def waiter(i):
        with cond:
            registered.release()
            if cond.wait(3):
                woken.append(i)

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for _ in threads:
        registered.acquire()
    with cond:
        assert "4)>" in repr(cond)
        cond.notify(2)
    time.sleep(0.3)
    assert len(woken) == 2
    with cond:
        cond.notify_all()
    for t in threads:
        t.join(JOIN)
    assert sorted(woken) == [0, 1, 2, 3]


def test_condition_notify_is_not_stolen_by_a_later_waiter():
    cond = shmproc.Condition(shmproc.Lock())
    first_registered = threading.Event()
    results = {}

    def first():
        with cond:
            first_registered.set()
            results["first"] = cond.wait(3)

    t = threading.Thread(target=first)
    t.start()
    first_registered.wait(JOIN)
    with cond:
        cond.notify()
        # A waiter arriving after the notify must not take it: it times out.
        results["late"] = cond.wait(0.2)
    t.join(JOIN)
    assert results == {"first": True, "late": False}


def test_condition_across_processes(ctx):
    cond = shmproc.Condition()
    block, items = shared_int64(2)
    done = [shmproc.Event() for _ in range(2)]
    children = [start(ctx, support.condition_consumer, cond, block.handle(), d) for d in done]
    time.sleep(0.2)
    for _ in range(2):
        with cond:
            items[0] += 1
            cond.notify()
    assert [finish(p) for p in children] == [0, 0]
    assert items[0] == 0 and items[1] == 2


def test_condition_wait_for():
    cond = shmproc.Condition()
    flag = []
    threading.Timer(0.1, lambda: (cond.acquire(), flag.append(1), cond.notify_all(), cond.release())).start()
    with cond:
        assert cond.wait_for(lambda: flag, timeout=5) == [1]
        assert cond.wait_for(lambda: False, timeout=0.05) is False


# --- Barrier ---------------------------------------------------------------------------------

def test_barrier_validation_and_repr():
    with pytest.raises(ValueError):
        shmproc.Barrier(0)
    b = shmproc.Barrier(3)
    assert b.parties == 3 and b.n_waiting == 0 and not b.broken
    assert repr(b).endswith("waiters=0/3>")
    b.abort()
    assert b.broken and repr(b).endswith("broken>")
    with pytest.raises(shmproc.BrokenBarrierError):
        b.wait()
    b.reset()
    assert not b.broken


def test_barrier_threads_action_and_indices():
    calls = []
    b = shmproc.Barrier(3, action=lambda: calls.append(1))
    indices = []
    threads = [threading.Thread(target=lambda: indices.append(b.wait(5))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert sorted(indices) == [0, 1, 2]
    assert calls == [1]


def test_barrier_timeout_breaks_it():
    b = shmproc.Barrier(2)
    with pytest.raises(shmproc.BrokenBarrierError):
        b.wait(0.1)
    assert b.broken


def test_barrier_failing_action_breaks_it():
    def boom():
        raise RuntimeError("boom")

    b = shmproc.Barrier(1, action=boom)
    with pytest.raises(RuntimeError):
        b.wait()
    assert b.broken


def test_barrier_rounds_across_processes(ctx):
    b = shmproc.Barrier(3)
    block, results = shared_int64(64)
    children = [start(ctx, support.barrier_rounds, b, 200, block.handle(), i) for i in range(2)]
    for _ in range(200):
        results[2] += b.wait(timeout=20)
    assert [finish(p) for p in children] == [0, 0]
    # Each round hands out indices 0, 1 and 2 once.
    assert results[0] + results[1] + results[2] == 200 * 3
    assert results[32] == results[33] == 200


def test_barrier_party_death_breaks_it_for_the_others(ctx):
    b, ready = shmproc.Barrier(2), shmproc.Event()
    # The child takes part in one round, then is killed before arriving at the next.
    p = start(ctx, support.barrier_party_then_sleep, b, ready)
    b.wait(timeout=20)
    assert ready.wait(JOIN)
    threading.Timer(0.2, os.kill, (p.pid, signal.SIGKILL)).start()
    t0 = time.monotonic()
    with pytest.raises(shmproc.BrokenBarrierError):
        b.wait(timeout=20)
    assert time.monotonic() - t0 < 2
    p.join(JOIN)


def test_barrier_party_that_exits_cleanly_does_not_break_it(ctx):
    b = shmproc.Barrier(2)
    block, results = shared_int64(64)
    p = start(ctx, support.barrier_rounds, b, 1, block.handle(), 0)
    b.wait(timeout=20)
    assert finish(p) == 0
    # A new party takes the finished one's place.
    q = start(ctx, support.barrier_rounds, b, 1, block.handle(), 1)
    b.wait(timeout=20)
    assert finish(q) == 0
    assert not b.broken


# --- Ctrl-C ----------------------------------------------------------------------------------

def _blocked_objects():
    lock = shmproc.Lock()
    lock.acquire()
    return {
        "lock": lock,
        "semaphore": shmproc.Semaphore(0),
        "event": shmproc.Event(),
        "barrier": shmproc.Barrier(2),
        "condition": shmproc.Condition(),
    }


@pytest.mark.parametrize("kind", ["lock", "semaphore", "event", "barrier", "condition"])
def test_sigint_interrupts_a_blocked_wait(ctx, kind):
    obj = _blocked_objects()[kind]
    ready, interrupted = shmproc.Event(), shmproc.Event()
    p = start(ctx, support.block_in_wait, kind, obj, ready, interrupted)
    try:
        assert ready.wait(JOIN)
        time.sleep(0.2)    # let it reach the futex sleep
        os.kill(p.pid, signal.SIGINT)
        assert interrupted.wait(2), "SIGINT did not interrupt the wait promptly"
        assert finish(p) == 0
    finally:
        if p.is_alive():
            stop(p)


# --- every start method ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_every_primitive_reaches_a_child_under_every_start_method(method):
    import multiprocessing
    ctx = multiprocessing.get_context(method)
    lock, rlock, sem = shmproc.Lock(), shmproc.RLock(), shmproc.Semaphore(0)
    event, cond, barrier, done = shmproc.Event(), shmproc.Condition(), shmproc.Barrier(2), shmproc.Event()
    lock.acquire()
    with cond:
        p = start(ctx, support.exercise_all_primitives, lock, rlock, sem, event, cond, barrier, done)
        assert lock.acquire(timeout=JOIN)               # released by the child
        assert sem.acquire(timeout=JOIN)
        event.set()
        assert cond.wait(JOIN)                          # notified by the child
    assert barrier.wait(JOIN) in (0, 1)
    assert done.wait(JOIN)
    assert finish(p) == 0
