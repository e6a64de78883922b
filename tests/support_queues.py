"""Module-level child targets for the queue and pipe tests (spawned children import them), and
the two helpers those tests start and finish children with."""
import os
import signal
import time

from shmproc import _core

JOIN_TIMEOUT = 60


def started(ctx, target, *args):
    process = ctx.Process(target=target, args=args)
    process.start()
    return process


def joined(*processes, timeout=JOIN_TIMEOUT):
    """Join children; a child still running after timeout is killed and fails the test."""
    import pytest
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            pytest.fail(f"child {process.pid} did not finish within {timeout}s")
        assert process.exitcode == 0, f"child {process.pid} exited with {process.exitcode}"


def put_range(q, start, stop):
    for i in range(start, stop):
        q.put(i)


def put_items(q, items):
    for item in items:
        q.put(item)


def put_many_range(q, start, stop, batch):
    for i in range(start, stop, batch):
        q.put_many(range(i, min(i + batch, stop)))


def put_and_exit(q, item):
    """Put, then exit at once: the message must outlive its sender."""
    q.put(item)


def echo_queue(requests, replies, count):
    for _ in range(count):
        replies.put(requests.get(timeout=30))


def get_and_report(q, results, count, timeout):
    for _ in range(count):
        results.put(q.get(timeout=timeout))


def sum_array(q, results):
    array = q.get(timeout=30)
    results.put((float(array.sum()), array.shape, array.dtype.str, bool(array.flags.writeable)))


def work_joinable(q, done):
    while True:
        item = q.get(timeout=30)
        if item is None:
            q.task_done()
            break
        done.put(item * 2)
        q.task_done()


def catch_sigint():
    """Python only turns SIGINT into KeyboardInterrupt if SIGINT was not ignored when it started,
    and a shell ignores it for commands it runs in the background (as a CI runner may do)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def blocked_get_reports_interrupt(q, ready, result):
    """Block in get() until SIGINT arrives; report how quickly KeyboardInterrupt came."""
    catch_sigint()
    ready.put(os.getpid())
    started = time.monotonic()
    try:
        q.get(timeout=30)
        result.put("returned")
    except KeyboardInterrupt:
        result.put(("interrupted", time.monotonic() - started))


def blocked_put_reports_interrupt(q, ready, result):
    catch_sigint()
    ready.put(os.getpid())
    started = time.monotonic()
    try:
        q.put("x", timeout=30)
        result.put("returned")
    except KeyboardInterrupt:
        result.put(("interrupted", time.monotonic() - started))


def tagged_producer(q, tag, count, progress_handle=None):
    """Put (tag, i, payload) for i in range(count); the payload is checkable, so a torn message
    shows. progress_handle names a shmproc Block of int64s whose [tag] counts the puts returned."""
    import numpy as np

    from shmproc._core import Block
    progress = None
    if progress_handle is not None:
        progress = np.frombuffer(Block.attach(progress_handle), dtype=np.int64)
    for i in range(count):
        q.put((tag, i, checkable_payload(tag, i)))
        if progress is not None:
            progress[tag] = i + 1


def checkable_payload(tag, i):
    """Mostly small, every 16th one larger than a quarter of a 64 KiB ring (spilled)."""
    size = (i * 7919 + tag * 104729) % 3000 + (40_000 if i % 16 == 0 else 0)
    return bytes([(tag + i) % 251]) * size


def int_producer(q, tag, count, batch):
    """Put tag << 32 | i for i in range(count): one put per message, or put_many(batch)."""
    base = tag << 32
    if batch == 1:
        for i in range(count):
            q.put(base | i)
        return
    for start in range(0, count, batch):
        q.put_many(range(base | start, base | min(start + batch, count)))


def int_consumer(q, results, batch):
    """Take messages until a None; report, per producer tag, the sequence numbers in the order
    this consumer received them."""
    seen = {}
    while True:
        items = [q.get(timeout=60)] if batch == 1 else q.get_many(batch, timeout=60)
        for item in items:
            if item is not None:
                seen.setdefault(item >> 32, []).append(item & 0xFFFFFFFF)
        if None in items:
            # One stop sign is ours; a batch may have taken the other consumers' too.
            q.put_many([None] * (items.count(None) - 1))
            results.put({tag: array_of(numbers) for tag, numbers in seen.items()})
            return


def array_of(numbers):
    import numpy as np
    return np.array(numbers, dtype=np.int64)


def take_ring_lock_and_die(q, producer, ready):
    _core.debug_take_ring_lock(q, producer)
    ready.put(os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


def send_objects(conn, items):
    for item in items:
        conn.send(item)
    conn.close()


def echo_connection(conn, count):
    for _ in range(count):
        conn.send(conn.recv())


def hold_connection_then_die(conn, ready):
    ready.put(os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


def send_bytes_then_exit(conn, data):
    conn.send_bytes(data)


def put_without_waiting_and_exit(q, count, array_count):
    """Put count ints and array_count spilled-size arrays with put_nowait, with nobody reading, and
    exit: an unbounded queue must take them all at once and keep them after this process is gone."""
    import numpy as np
    for i in range(count):
        q.put_nowait(i)
    for i in range(array_count):
        q.put_nowait(np.full(5_000, i, dtype=np.int64))


def put_wait_put(q, first, go, second):
    """Put first into a fresh spill range (pwritev: this process never maps it), wait until the
    parent has taken and dropped it, then put second: a warm range this process has not mapped."""
    q.put(first)
    go.wait(JOIN_TIMEOUT)
    q.put(second)


def put_large_array(q, nbytes):
    import numpy as np
    q.put(np.ones(nbytes // 8))


def take(q, count):
    """Exactly count messages, in as few get_many calls as they arrive in."""
    got = []
    while len(got) < count:
        got.extend(q.get_many(count - len(got), timeout=JOIN_TIMEOUT))
    return got


def read_then_stop(q, first, records, ints, stopped, go, results):
    """Read the first of `records` byte records, stop (the writer goes on without us), then read
    the other records and `ints` ints; report whether each part came whole and in order."""
    head = take(q, first)
    stopped.set()
    go.wait(JOIN_TIMEOUT)
    rest = take(q, records - first + ints)
    results.put((head == [b"%07d" % i for i in range(first)],
                 rest[:records - first] == [b"%07d" % i for i in range(first, records)],
                 rest[records - first:] == list(range(ints))))


def counting_producer(q, shared_handle, seed):
    """Put 0, 1, 2, ... in batches of random sizes, sometimes pausing (so that readers drain the
    ring) and sometimes not (so that it grows), until shared[0] is set; then store the count put
    in shared[1]."""
    import random

    import numpy as np

    from shmproc._core import Block
    shared = np.frombuffer(Block.attach(shared_handle), dtype=np.int64)
    rng = random.Random(seed)
    next_value = 0
    while not shared[0]:
        size = rng.choice((1, 7, 100, 500))
        q.put_many(range(next_value, next_value + size))
        next_value += size
        if rng.random() < 0.01:
            time.sleep(0.002)
    shared[1] = next_value


def recording_consumer(q, shared_handle, slot, seed):
    """Take batches of random sizes; after each, record in shared[slot] and shared[slot + 1] the
    first and the last value this process has received, and count in shared[2] any batch that is
    not the run of consecutive values it must be (a torn, lost or repeated message)."""
    import random

    import numpy as np

    from shmproc._core import Block
    shared = np.frombuffer(Block.attach(shared_handle), dtype=np.int64)
    rng = random.Random(seed)
    while True:
        batch = q.get_many(rng.choice((1, 10, 50)), timeout=JOIN_TIMEOUT)
        expected_first = shared[slot + 1] + 1 if shared[slot] >= 0 else batch[0]
        if batch != list(range(expected_first, expected_first + len(batch))):
            shared[2] += 1
        if shared[slot] < 0:
            shared[slot] = batch[0]
        shared[slot + 1] = batch[-1]


def take_tasks_and_die(q, taken, done, ready):
    """Take `taken` tasks, finish `done` of them, and die (SIGKILL) holding the rest."""
    for _ in range(taken):
        q.get(timeout=JOIN_TIMEOUT)
    for _ in range(done):
        q.task_done()
    ready.put(os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


def work_slowly(q, seconds, count):
    """Take count tasks, each finished `seconds` after it was taken."""
    for _ in range(count):
        q.get(timeout=JOIN_TIMEOUT)
        time.sleep(seconds)
        q.task_done()
