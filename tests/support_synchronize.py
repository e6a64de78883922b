"""Module-level child targets for the synchronization tests (spawned children import them)."""
import os
import signal
import time


def hold_lock_forever(lock, ready):
    lock.acquire()
    ready.set()
    time.sleep(60)


def hold_lock_and_die(lock, ready):
    lock.acquire()
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def increment_under_lock(lock, counter_block_handle, times):
    import numpy as np

    from shmproc._core import Block
    counter = np.frombuffer(Block.attach(counter_block_handle), dtype=np.int64, count=1)
    for _ in range(times):
        with lock:
            counter[0] += 1


def release_rlock(rlock, result):
    try:
        rlock.release()
    except AssertionError:
        result.set()


def acquire_and_report(lock, acquired, timeout):
    if lock.acquire(timeout=timeout):
        acquired.set()
        lock.release()


def semaphore_worker(sem, peak_lock, peak_block_handle, rounds):
    import numpy as np

    from shmproc._core import Block
    peak = np.frombuffer(Block.attach(peak_block_handle), dtype=np.int64, count=2)
    for _ in range(rounds):
        with sem:
            with peak_lock:
                peak[0] += 1
                peak[1] = max(peak[1], peak[0])
            time.sleep(0.001)
            with peak_lock:
                peak[0] -= 1


def set_event_later(event, delay):
    time.sleep(delay)
    event.set()


def wait_event(event, seen, timeout):
    if event.wait(timeout):
        seen.set()


def condition_consumer(cond, items_block_handle, done):
    import numpy as np

    from shmproc._core import Block
    items = np.frombuffer(Block.attach(items_block_handle), dtype=np.int64, count=2)
    with cond:
        ok = cond.wait_for(lambda: items[0] > 0, timeout=10)
        if ok:
            items[0] -= 1
            items[1] += 1
    done.set()


def barrier_rounds(barrier, rounds, results_block_handle, slot):
    import numpy as np

    from shmproc._core import Block
    results = np.frombuffer(Block.attach(results_block_handle), dtype=np.int64, count=64)
    for _ in range(rounds):
        results[slot] += barrier.wait(timeout=20)
    results[32 + slot] = rounds


def barrier_wait_expect_broken(barrier, broken, timeout):
    from threading import BrokenBarrierError
    try:
        barrier.wait(timeout=timeout)
    except BrokenBarrierError:
        broken.set()


def barrier_party_then_sleep(barrier, ready):
    barrier.wait(timeout=20)
    ready.set()
    time.sleep(60)


def block_in_wait(kind, obj, ready, interrupted):
    # Python only turns SIGINT into KeyboardInterrupt if SIGINT was not ignored when it started,
    # and a shell ignores it for commands it runs in the background (as a CI runner may do).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ready.set()
    try:
        if kind == "lock":
            obj.acquire()
        elif kind == "semaphore":
            obj.acquire()
        elif kind == "event":
            obj.wait()
        elif kind == "barrier":
            obj.wait()
        elif kind == "condition":
            with obj:
                obj.wait()
    except KeyboardInterrupt:
        interrupted.set()


def exercise_all_primitives(lock, rlock, sem, event, cond, barrier, done):
    """Use each primitive once from the child side; the parent checks the effects."""
    lock.release()                  # the parent left it held
    with rlock:
        pass
    sem.release()
    event.wait(10)
    with cond:
        cond.notify()
    barrier.wait(10)
    done.set()
