"""shmproc.connection: Pipe, Connection and wait() against multiprocessing's behaviour, in one
process and across real processes (fork and spawn)."""
import array
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import signal
import time

import numpy as np
import pytest
import support_queues
from support_queues import joined, started

from shmproc import _core
from shmproc.connection import BufferTooShort, Connection, Pipe, wait
from shmproc.queues import Queue

JOIN_TIMEOUT = 30


@pytest.fixture(params=["multiprocessing", "shmproc"])
def make_pipe(request):
    """The same behaviour test, run on multiprocessing's Pipe and on shmproc's."""
    return multiprocessing.Pipe if request.param == "multiprocessing" else Pipe


# -- the API, same as multiprocessing's ---------------------------------------------------------

def test_duplex_both_ways(make_pipe):
    a, b = make_pipe()
    a.send([1, "two"])
    b.send(3.0)
    assert b.recv() == [1, "two"] and a.recv() == 3.0
    assert a.readable and a.writable and b.readable and b.writable


def test_simplex_ends(make_pipe):
    reader, writer = make_pipe(duplex=False)
    assert reader.readable and not reader.writable
    assert writer.writable and not writer.readable
    writer.send("x")
    assert reader.recv() == "x"
    with pytest.raises(OSError, match="read-only"):
        reader.send(1)
    with pytest.raises(OSError, match="write-only"):
        writer.recv()


def test_send_bytes_offset_size_and_recv_bytes(make_pipe):
    a, b = make_pipe()
    a.send_bytes(b"0123456789", 2, 5)
    assert b.recv_bytes() == b"23456"
    a.send_bytes(array.array("i", [1, 2, 3]), 4)        # offset in bytes, after the cast to 'B'
    assert b.recv_bytes() == array.array("i", [2, 3]).tobytes()
    a.send_bytes(b"")
    assert b.recv_bytes() == b""
    for offset, size in ((-1, None), (11, None), (0, -1), (5, 6)):
        with pytest.raises(ValueError):
            a.send_bytes(b"0123456789", offset, size)
    with pytest.raises(ValueError):
        b.recv_bytes(-1)


def test_recv_bytes_maxlength(make_pipe):
    a, b = make_pipe()
    a.send_bytes(b"x" * 10)
    with pytest.raises(OSError, match="bad message length"):
        b.recv_bytes(5)


def test_recv_bytes_into(make_pipe):
    a, b = make_pipe()
    a.send_bytes(b"hello")
    buffer = bytearray(10)
    assert b.recv_bytes_into(buffer, 3) == 5
    assert buffer == b"\0\0\0hello\0\0"
    a.send_bytes(b"too long for it")
    with pytest.raises(BufferTooShort) as info:
        b.recv_bytes_into(bytearray(4))
    assert info.value.args[0] == b"too long for it"
    with pytest.raises(ValueError):
        b.recv_bytes_into(bytearray(4), 5)


def test_bytes_and_objects_interoperate(make_pipe):
    a, b = make_pipe()
    a.send_bytes(pickle.dumps({"k": 1}))
    assert b.recv() == {"k": 1}
    for obj in (12, "text", b"raw", (1, 2), None):
        a.send(obj)
        assert pickle.loads(b.recv_bytes()) == obj


def test_poll(make_pipe):
    a, b = make_pipe()
    assert not b.poll()
    assert not b.poll(0.05)
    a.send(1)
    assert b.poll() and b.poll(1)
    b.recv()
    assert not b.poll(0)


def test_closed_connection(make_pipe):
    a, b = make_pipe()
    with a:
        assert not a.closed
    assert a.closed
    a.close()
    for call in (lambda: a.send(1), a.recv, a.poll, a.fileno, lambda: a.send_bytes(b"")):
        with pytest.raises(OSError):
            call()


def test_eof_after_the_other_end_closes(make_pipe):
    a, b = make_pipe()
    a.send("last")
    a.close()
    assert b.poll(1)
    assert b.recv() == "last"
    assert b.poll(1)                     # EOF counts as readable
    with pytest.raises(EOFError):
        b.recv()


def test_select_on_fileno(make_pipe):
    a, b = make_pipe()
    fd = b.fileno()
    assert select.select([fd], [], [], 0)[0] == []
    a.send("x")
    assert select.select([fd], [], [], 5)[0] == [fd]
    b.recv()
    assert select.select([fd], [], [], 0)[0] == []


def test_wait_over_connections_queues_and_sentinels(ctx):
    a, b = Pipe()
    c, d = Pipe()
    q = Queue()
    assert wait([b, d, q], timeout=0.05) == []
    c.send(1)
    assert wait([b, d, q], timeout=5) == [d]
    d.recv()
    q.put("item")
    queue_reader = q._reader
    assert wait([b, d, queue_reader], timeout=5) == [queue_reader]
    assert queue_reader.recv() == "item"
    child = started(ctx, time.sleep, 0.2)
    assert wait([b, child.sentinel], timeout=10) == [child.sentinel]
    joined(child)


def test_stdlib_wait_accepts_shmproc_objects():
    a, b = Pipe()
    q = Queue()
    q.put(1)
    assert multiprocessing.connection.wait([b, q], timeout=5) == [q]
    a.send(2)
    assert set(multiprocessing.connection.wait([b, q], timeout=5)) == {b, q}


# -- beyond multiprocessing --------------------------------------------------------------------

def test_large_message_and_ndarray(make_pipe):
    a, b = Pipe()
    big = np.arange(1_000_000, dtype=np.float64)
    a.send(big)
    got = b.recv()
    assert np.array_equal(got, big) and got.flags.writeable
    payload = os.urandom(3 << 20)
    a.send_bytes(payload)
    assert b.recv_bytes() == payload


def test_large_messages_as_bytes_and_objects():
    a, b = Pipe()
    for obj in ("x" * 400_000, b"y" * 400_000, list(range(100_000))):
        a.send(obj)
        assert pickle.loads(b.recv_bytes()) == obj
    a.send_bytes(pickle.dumps(list(range(100_000))))
    assert b.recv() == list(range(100_000))


def test_writer_blocked_on_a_full_ring_learns_the_reader_is_gone():
    (reader, writer), = _core.open_pipe_ends(False, 4096)
    connection_in, connection_out = Connection(reader, None), Connection(None, writer)
    connection_in.close()
    with pytest.raises(BrokenPipeError):
        for _ in range(10_000):
            connection_out.send_bytes(b"x" * 100)


# -- across processes ------------------------------------------------------------------------------

def test_echo_across_processes(ctx):
    a, b = Pipe()
    child = started(ctx, support_queues.echo_connection, b, 300)
    b.close()
    for i in range(300):
        a.send((i, "x" * (i % 50)))
        assert a.recv() == (i, "x" * (i % 50))
    joined(child)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_child_end_closed_in_parent_right_after_start(start_method):
    """The usual idiom: start the child with one end, close that end here at once. Under spawn and
    forkserver the end's descriptors travel with the start, so closing it here is safe."""
    import shmproc
    shm_ctx = shmproc.get_context(start_method)
    here, there = Pipe()
    child = started(shm_ctx, support_queues.echo_connection, there, 2)
    there.close()
    for item in ("a", np.arange(4)):
        here.send(item)
        assert np.array_equal(here.recv(), item)
    joined(child)
    assert here.poll(JOIN_TIMEOUT)
    with pytest.raises(EOFError):
        here.recv()


def test_child_sends_then_closes_eof_in_parent(ctx):
    reader, writer = Pipe(duplex=False)
    child = started(ctx, support_queues.send_objects, writer, list(range(50)))
    writer.close()
    got = []
    with pytest.raises(EOFError):
        while True:
            assert reader.poll(JOIN_TIMEOUT)
            got.append(reader.recv())
    assert got == list(range(50))
    joined(child)


def test_eof_when_the_peer_process_dies(ctx):
    a, b = Pipe()
    ready = Queue()
    child = started(ctx, support_queues.hold_connection_then_die, b, ready)
    b.close()
    ready.get(timeout=JOIN_TIMEOUT)
    child.join(JOIN_TIMEOUT)
    assert child.exitcode == -signal.SIGKILL
    assert a.poll(JOIN_TIMEOUT)
    with pytest.raises(EOFError):
        a.recv()


def test_bytes_sent_by_an_exited_child_are_still_received(ctx):
    reader, writer = Pipe(duplex=False)
    payload = os.urandom(2 << 20)                  # spilled
    child = started(ctx, support_queues.send_bytes_then_exit, writer, payload)
    writer.close()
    joined(child)
    assert reader.recv_bytes() == payload
    with pytest.raises(EOFError):
        reader.recv_bytes()
