"""Module-level child targets for the handle tests (spawned children import them): senders that put
one of every shmproc object that pickles by reference and then exit or are SIGKILLed, receivers
that check what arrived."""
import os
import signal

import shmproc

KINDS = ("ndarray", "Value", "Array", "RawValue", "RawArray", "Lock", "RLock", "Semaphore",
         "BoundedSemaphore", "Event", "Condition", "Barrier", "Queue", "SimpleQueue",
         "JoinableQueue", "Connection")


def make_objects():
    """One of each kind, made in the sender and dropped by it once sent; each carries a state the
    receiver can check, set by the sender."""
    array = shmproc.zeros(20_000)                # 160 KB: a segment of its own
    array[:] = 7
    event = shmproc.Event()
    event.set()
    queues = {"Queue": shmproc.Queue(), "SimpleQueue": shmproc.SimpleQueue(),
              "JoinableQueue": shmproc.JoinableQueue()}
    for name, queue in queues.items():
        queue.put(f"inside {name}")
    reader, writer = shmproc.Pipe(duplex=False)
    writer.send("inside Connection")
    objects = {
        "ndarray": array,
        "Value": shmproc.Value("i", 41),
        "Array": shmproc.Array("i", [1, 2, 3]),
        "RawValue": shmproc.RawValue("d", 2.5),
        "RawArray": shmproc.RawArray("i", [4, 5]),
        "Lock": shmproc.Lock(),
        "RLock": shmproc.RLock(),
        "Semaphore": shmproc.Semaphore(2),
        "BoundedSemaphore": shmproc.BoundedSemaphore(1),
        "Event": event,
        "Condition": shmproc.Condition(),
        "Barrier": shmproc.Barrier(1),
        "Connection": reader,
    }
    objects.update(queues)
    return objects, writer


def check(kind, obj):
    """Raise unless obj is a working, attached object of this kind with the sender's state."""
    if kind == "ndarray":
        assert obj.shape == (20_000,) and float(obj.sum()) == 7 * 20_000
    elif kind == "Value":
        assert obj.value == 41
        with obj.get_lock():
            obj.value += 1
    elif kind == "Array":
        assert list(obj) == [1, 2, 3]
    elif kind == "RawValue":
        assert obj.value == 2.5
    elif kind == "RawArray":
        assert list(obj) == [4, 5]
    elif kind in ("Lock", "RLock", "BoundedSemaphore"):
        assert obj.acquire(False)
        obj.release()
    elif kind == "Semaphore":
        assert obj.acquire(False) and obj.acquire(False) and not obj.acquire(False)
    elif kind == "Event":
        assert obj.is_set()
    elif kind == "Condition":
        with obj:
            obj.notify_all()
    elif kind == "Barrier":
        assert obj.wait(5) == 0
    elif kind == "Connection":
        assert obj.recv() == "inside Connection"
    else:
        assert obj.get() == f"inside {kind}"
    return True


def _put(channel, item):
    if hasattr(channel, "send"):
        channel.send(item)
    else:
        channel.put(item)


def _get(channel):
    return channel.recv() if hasattr(channel, "recv") else channel.get()


def send_every_kind_then_end(channel, ending):
    """Put (kind, object) for every kind, drop them, then return, exit at once, or SIGKILL this
    process right after the last put."""
    objects, writer = make_objects()
    for kind in KINDS:
        _put(channel, (kind, objects[kind]))
    del objects
    if ending == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if ending == "exit":
        os._exit(0)
    writer.close()


def receive_every_kind(channel, results):
    """A receiver started by spawn or forkserver: check each object, report the kinds that worked."""
    ok = []
    for _ in KINDS:
        kind, obj = _get(channel)
        try:
            check(kind, obj)
            ok.append(kind)
        except Exception as exc:
            ok.append(f"{kind} failed: {exc!r}")
    results.put(ok)


def send_arrays_then_exit(queue, count, length):
    """Put count shared arrays, the i-th starting with i, then exit at once."""
    arrays = [shmproc.zeros(length) for _ in range(count)]
    for i, array in enumerate(arrays):
        array[0] = i
        queue.put(array)
    os._exit(0)


def return_fresh_array(channel, megabytes):
    array = shmproc.zeros(megabytes << 17)          # float64: 2**17 items per MiB
    array[:] = 1
    _put(channel, array)


def put_array_and_wait(queue, ready, megabytes):
    """The tree-kill test's child: puts a big array no one reads, then waits to be killed."""
    array = shmproc.zeros(megabytes << 17)
    array[:] = 1
    queue.put(array)
    ready.set()
    signal.pause()



def send_values_dropping_each(queue):
    """Put a Value, drop it, make another (its creator would reuse the block), put that: each must
    arrive with its own state."""
    value = shmproc.Value("i", 1)
    queue.put(value)
    del value
    queue.put(shmproc.Value("i", 2))
    os._exit(0)


def send_array_then_exit(channel, length):
    """Send one shared array through a queue or a Pipe end, then exit at once."""
    array = shmproc.zeros(length)
    _put(channel, array)
    os._exit(0)


def fresh_array(megabytes):
    """A pool task: a fresh shared array, returned (the worker may exit at once after)."""
    array = shmproc.zeros(megabytes << 17)
    array[:] = 3
    return array
