"""Module-level child targets for the queue and pipe tests (spawned children import them)."""
import os
import signal
import time


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


def blocked_get_reports_interrupt(q, ready, result):
    """Block in get() until SIGINT arrives; report how quickly KeyboardInterrupt came."""
    ready.put(os.getpid())
    started = time.monotonic()
    try:
        q.get(timeout=30)
        result.put("returned")
    except KeyboardInterrupt:
        result.put(("interrupted", time.monotonic() - started))


def blocked_put_reports_interrupt(q, ready, result):
    ready.put(os.getpid())
    started = time.monotonic()
    try:
        q.put("x", timeout=30)
        result.put("returned")
    except KeyboardInterrupt:
        result.put(("interrupted", time.monotonic() - started))


def tagged_producer(q, tag, count, progress=None):
    """Put (tag, i, payload) for i in range(count); payload is checkable, so a torn message shows.
    progress (a shmproc Array('q', ...)-like sequence) records how many puts have returned."""
    for i in range(count):
        q.put((tag, i, checkable_payload(tag, i)))
        if progress is not None:
            progress[tag] = i + 1


def checkable_payload(tag, i):
    size = (i * 7919 + tag * 104729) % 3000
    return bytes([(tag + i) % 251]) * size


def batch_producer(q, tag, count, batch):
    for start in range(0, count, batch):
        q.put_many([(tag, i) for i in range(start, min(start + batch, count))])


def batch_consumer(q, results, stop_after):
    """Take messages until a None; report (tag, i) sequences per tag in the order received."""
    seen = {}
    while True:
        for item in q.get_many(1024, timeout=60):
            if item is None:
                results.put(seen)
                return
            tag, i = item
            seen.setdefault(tag, []).append(i)


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
