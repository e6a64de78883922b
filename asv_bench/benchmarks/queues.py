"""shmproc's Queue, SimpleQueue and Pipe against multiprocessing's and faster-fifo's: messages per
second one process to another (single and batched), round trips, a 64 MB ndarray, a shared ndarray.
`asv_bench/compare_queues.py` prints the same workloads side by side without asv.

Every workload forks its peer with multiprocessing's fork context for every implementation, and the
peer waits on a pipe before it starts, so process start-up is outside the timing; only the channel
differs. The workload functions return seconds per message (or per round trip).
"""
import os
import time

from .common import FORK

SMALL_MESSAGES = 200_000
BATCH = 1000
ROUND_TRIPS = 5000
ARRAY_MESSAGES = 3
# Untimed arrays before the steady-state ones: a sender rotates through two spill ranges, each new
# (arrays 1 and 2) then costing it one page-table fill on its first reuse (arrays 3 and 4); with three,
# array 4 was timed and the row read 6-9 ms instead of ~6.
ARRAY_WARMUP = 5


# --- implementations: how to make a channel and move messages through it ------------------------

class Channel:
    """One implementation. make() returns (writer, reader); the methods move messages."""
    name = ""
    batched = False

    def make(self, max_bytes):
        raise NotImplementedError

    def put(self, writer, obj):
        writer.put(obj)

    def get(self, reader):
        return reader.get()

    def put_many(self, writer, objs):
        raise NotImplementedError

    def get_many(self, reader, count):
        raise NotImplementedError

    def close(self, writer, reader):
        pass


class MultiprocessingQueue(Channel):
    name = "mp.Queue"

    def make(self, max_bytes):
        q = FORK.Queue()
        return q, q

    def close(self, writer, reader):
        writer.close()
        writer.join_thread()


class MultiprocessingSimpleQueue(Channel):
    name = "mp.SimpleQueue"

    def make(self, max_bytes):
        q = FORK.SimpleQueue()
        return q, q


class MultiprocessingPipe(Channel):
    name = "mp.Pipe"

    def make(self, max_bytes):
        reader, writer = FORK.Pipe()
        return writer, reader

    def put(self, writer, obj):
        writer.send(obj)

    def get(self, reader):
        return reader.recv()


class FasterFifoQueue(Channel):
    name = "faster_fifo"
    batched = True

    def make(self, max_bytes):
        try:
            import faster_fifo
        except ImportError:
            raise NotImplementedError("faster-fifo is not installed") from None
        q = faster_fifo.Queue(max_size_bytes=max_bytes)
        return q, q

    def get(self, reader):
        return reader.get(timeout=600)

    def put_many(self, writer, objs):
        writer.put_many(objs, timeout=600)

    def get_many(self, reader, count):
        return reader.get_many(timeout=600, max_messages_to_get=count)


def shmproc_module(name):
    try:
        return __import__(f"shmproc.{name}", fromlist=[name])
    except ImportError:
        raise NotImplementedError(f"shmproc.{name} is not available in this version") from None


class ShmprocQueue(Channel):
    name = "shmproc.Queue"
    batched = True

    def make(self, max_bytes):
        q = shmproc_module("queues").Queue()
        return q, q

    def put_many(self, writer, objs):
        writer.put_many(objs)

    def get_many(self, reader, count):
        return reader.get_many(count)


class ShmprocSimpleQueue(Channel):
    name = "shmproc.SimpleQueue"

    def make(self, max_bytes):
        q = shmproc_module("queues").SimpleQueue()
        return q, q


class ShmprocPipe(MultiprocessingPipe):
    name = "shmproc.Pipe"

    def make(self, max_bytes):
        reader, writer = shmproc_module("connection").Pipe()
        return writer, reader


CHANNELS = {channel.name: channel for channel in (
    MultiprocessingQueue(), MultiprocessingSimpleQueue(), MultiprocessingPipe(), FasterFifoQueue(),
    ShmprocQueue(), ShmprocSimpleQueue(), ShmprocPipe())}


def channel_named(name):
    return CHANNELS[name]


# --- workloads -----------------------------------------------------------------------------------

def _after_go(go_fd, work, *args):
    os.read(go_fd, 1)
    work(*args)


def _produce(channel, writer, payload, count, batch, warmup=0, go_fd=None):
    """Put warmup messages, wait for go (when warming up), then put count messages."""
    for _ in range(warmup):
        channel.put(writer, payload)
    if go_fd is not None:
        os.read(go_fd, 1)
    if batch:
        chunk = [payload] * batch
        for _ in range(count // batch):
            channel.put_many(writer, chunk)
    else:
        for _ in range(count):
            channel.put(writer, payload)


def _echo(channel, requests, replies, count, cpus=None):
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    for _ in range(count):
        channel.put(replies, channel.get(requests))


# Where the two processes of a round trip run: on two cores (each pinned to its own), squeezed onto
# one core, or wherever the scheduler puts them.
PLACEMENTS = {"apart": ({0}, {1}), "together": ({0}, {0}), None: (None, None)}


def _run_with_peer(target, args, timed, warm=None):
    """Fork the peer (blocked until go; with warm, target reads go itself after its warm-up, which
    warm() receives), then time timed() from the go signal."""
    go_read, go_write = os.pipe()
    if warm is None:
        peer = FORK.Process(target=_after_go, args=(go_read, target) + args)
    else:
        peer = FORK.Process(target=target, args=args + (go_read,))
    peer.start()
    try:
        if warm is not None:
            warm()
        started = time.perf_counter()
        os.write(go_write, b"g")
        timed()
        elapsed = time.perf_counter() - started
    finally:
        peer.join(600)
        if peer.is_alive():
            peer.kill()
            peer.join()
        os.close(go_read)
        os.close(go_write)
    return elapsed


def one_way(name, payload, count, batch=0, max_bytes=1 << 22, warmup=0):
    """Seconds per message, count messages from a child to this process (batched: put_many /
    get_many of `batch`). warmup messages go through first, untimed (steady state: a large
    message's shared memory is then warm)."""
    channel = channel_named(name)
    writer, reader = channel.make(max_bytes)

    def warm():
        for _ in range(warmup):
            channel.get(reader)

    def consume():
        received = 0
        while received < count:
            if batch:
                received += len(channel.get_many(reader, batch))
            else:
                channel.get(reader)
                received += 1

    try:
        if not warmup:
            return _run_with_peer(_produce, (channel, writer, payload, count, batch), consume) / count
        return _run_with_peer(_produce, (channel, writer, payload, count, batch, warmup), consume,
                              warm) / count
    finally:
        channel.close(writer, reader)


def round_trip(name, count, placement=None):
    """Seconds per round trip: this process sends an int, a child sends it back. Queues use two
    queues; a Pipe uses its two directions. placement: a key of PLACEMENTS."""
    channel = channel_named(name)
    here_cpus, there_cpus = PLACEMENTS[placement]
    if isinstance(channel, MultiprocessingPipe):
        here, there = channel.make(1 << 20)
        requests_in, requests_out, replies_in, replies_out = there, here, here, there
    else:
        requests_out, requests_in = channel.make(1 << 20)
        replies_out, replies_in = channel.make(1 << 20)

    def ping():
        for i in range(count):
            channel.put(requests_out, i)
            channel.get(replies_in)

    allowed = os.sched_getaffinity(0)
    if here_cpus is not None:
        os.sched_setaffinity(0, here_cpus)
    try:
        return _run_with_peer(_echo, (channel, requests_in, replies_out, count, there_cpus),
                              ping) / count
    finally:
        os.sched_setaffinity(0, allowed)


def ndarray_one_way(name, nbytes, count=ARRAY_MESSAGES, warmup=ARRAY_WARMUP):
    """Seconds per message for a float64 ndarray of nbytes, child to this process; by default
    after ARRAY_WARMUP untimed arrays (steady state: a sender alternates between two warm ranges,
    each already mapped and populated), with warmup=0 the first array's cost."""
    import numpy as np
    array = np.arange(nbytes // 8, dtype=np.float64)
    return one_way(name, array, count, max_bytes=nbytes + (16 << 20), warmup=warmup)


def shared_ndarray_one_way(nbytes, count=200):
    """Seconds per message for a shmproc shared ndarray of nbytes through shmproc.Queue."""
    array = shmproc_module("ndarray").zeros(nbytes // 8)
    return one_way("shmproc.Queue", array, count, warmup=1)


# --- asv ------------------------------------------------------------------------------------------

SMALL_PAYLOADS = {"int": 12345, "bytes100": b"x" * 100}


class ChannelBenchmark:
    """Few, long samples: each one forks a peer and moves many messages."""
    number = 1
    repeat = 3
    timeout = 300

    def setup(self, name, *rest):
        channel_named(name).make(1 << 20)     # NotImplementedError (skip) if it is missing


class SmallMessages(ChannelBenchmark):
    """1 producer process -> 1 consumer process, 200,000 small messages: seconds per message."""
    params = [list(CHANNELS), list(SMALL_PAYLOADS)]
    param_names = ["channel", "payload"]

    def track_seconds_per_message(self, name, payload):
        return one_way(name, SMALL_PAYLOADS[payload], SMALL_MESSAGES)
    track_seconds_per_message.unit = "seconds"


class BatchedSmallMessages(ChannelBenchmark):
    """put_many / get_many of 1000: seconds per message."""
    params = [["faster_fifo", "shmproc.Queue"], list(SMALL_PAYLOADS)]
    param_names = ["channel", "payload"]

    def track_seconds_per_message(self, name, payload):
        return one_way(name, SMALL_PAYLOADS[payload], SMALL_MESSAGES, batch=BATCH)
    track_seconds_per_message.unit = "seconds"


class RoundTrip(ChannelBenchmark):
    """Ping-pong between two processes: seconds per round trip, the processes unpinned, pinned to
    two cores, pinned to one."""
    params = [list(CHANNELS), ["unpinned", "apart", "together"]]
    param_names = ["channel", "placement"]

    def setup(self, name, placement):
        super().setup(name)
        if placement != "unpinned" and len(os.sched_getaffinity(0)) < 2:
            raise NotImplementedError("needs two cores")

    def track_seconds_per_round_trip(self, name, placement):
        return round_trip(name, ROUND_TRIPS, None if placement == "unpinned" else placement)
    track_seconds_per_round_trip.unit = "seconds"


class LargeNdarray(ChannelBenchmark):
    """A 64 MB float64 ndarray from one process to another: seconds per array, in the steady state
    and for the first one (fresh shared memory)."""
    params = [["mp.Queue", "faster_fifo", "shmproc.Queue"]]
    param_names = ["channel"]

    def track_seconds_per_array(self, name):
        return ndarray_one_way(name, 64 << 20)
    track_seconds_per_array.unit = "seconds"

    def track_seconds_first_array(self, name):
        return ndarray_one_way(name, 64 << 20, count=1, warmup=0)
    track_seconds_first_array.unit = "seconds"


class SharedNdarray(ChannelBenchmark):
    """A shmproc shared ndarray through shmproc.Queue: constant time whatever its size."""
    params = [[1 << 20, 64 << 20, 1 << 30]]
    param_names = ["nbytes"]

    def setup(self, nbytes):
        shmproc_module("ndarray")
        shmproc_module("queues")

    def track_seconds_per_array(self, nbytes):
        return shared_ndarray_one_way(nbytes)
    track_seconds_per_array.unit = "seconds"
