"""A duplex Pipe's fileno() is its end of a Unix socketpair: the standard library's own
multiprocessing.reduction.send_handle/recv_handle pass descriptors over it, while select()/wait()
readiness and EOF keep following the Pipe's messages (docs/internals/ring.md, "The notify
descriptor"). Real processes under fork, spawn and forkserver."""
import multiprocessing
import multiprocessing.connection
import multiprocessing.reduction as stdlib_reduction
import os
import signal
import socket
import threading
from multiprocessing.connection import wait

import pytest
import support_reduction
from support_queues import joined

import shmproc
import shmproc.connection

WAIT = 30       # seconds: far longer than any wake-up takes; reaching it is the failure


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def any_ctx(request):
    return multiprocessing.get_context(request.param)


# The standard library's wait() asks a duplex Connection for fileno() as send_handle does (so the
# peer sends a byte behind whatever may follow); shmproc's asks without that.
WAITS = {"stdlib wait": multiprocessing.connection.wait, "shmproc wait": shmproc.connection.wait}


@pytest.fixture(params=list(WAITS))
def waiter(request):
    return WAITS[request.param]


def test_duplex_ends_are_a_blocking_socketpair():
    a, b = shmproc.Pipe()
    with socket.socket(fileno=os.dup(a.fileno())) as sock:
        assert sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM
        assert sock.getblocking()
    reader, writer = shmproc.Pipe(duplex=False)
    with pytest.raises(OSError):
        socket.socket(fileno=os.dup(reader.fileno())).close()
    for conn in (a, b, reader, writer):
        conn.close()


def test_descriptors_both_ways_and_in_order_with_data(any_ctx, tmp_path):
    inbound, outbound = tmp_path / "to_parent", tmp_path / "to_child"
    inbound.write_bytes(b"from the parent's file")
    outbound.write_bytes(b"")
    here, there = shmproc.Pipe()
    child = any_ctx.Process(target=support_reduction.send_handles_with_data, args=(there, inbound))
    child.start()
    there.close()
    assert here.recv() == "before"
    fd = stdlib_reduction.recv_handle(here)
    assert os.pread(fd, 100, 0) == b"from the parent's file"
    os.close(fd)
    assert here.recv() == "after"
    with open(outbound, "wb") as f:
        stdlib_reduction.send_handle(here, f.fileno(), child.pid)
    here.send("finish")
    joined(child)
    assert outbound.read_bytes() == b"from the child"
    assert wait([here], 0) == [here]        # EOF: the child is gone
    with pytest.raises(EOFError):
        here.recv()
    here.close()


def test_recv_handle_refuses_bytes_without_a_descriptor():
    # What CPython's test_missing_fd_transfer checks, in one process.
    a, b = shmproc.Pipe()
    os.write(b.fileno(), b"\0")
    with pytest.raises(RuntimeError):
        stdlib_reduction.recv_handle(a)
    a.send("still a pipe")
    assert b.recv() == "still a pipe"
    a.close()
    b.close()


def test_readiness_follows_messages_in_one_process(waiter):
    wait = waiter
    a, b = shmproc.Pipe()
    a.send(1)                               # before anyone asked for a descriptor
    assert wait([b], 0) == [b]
    assert wait([a], 0) == []
    assert b.recv() == 1
    assert wait([a, b], 0) == []
    for round_ in range(200):
        for i in range(round_ % 5 + 1):
            b.send(i)
        assert wait([a], 0) == [a]
        for i in range(round_ % 5 + 1):
            assert a.recv() == i
        assert wait([a, b], 0) == []
    a.close()
    b.close()


@pytest.mark.timeout(60)
def test_no_missed_or_lasting_wakeup_across_processes(any_ctx, waiter):
    wait = waiter
    here, there = shmproc.Pipe()
    done = any_ctx.Event()
    child = any_ctx.Process(target=support_reduction.echo_until_done, args=(there, done))
    child.start()
    there.close()
    for round_ in range(300):
        burst = round_ % 7 + 1
        for i in range(burst):
            here.send(round_ + i)
        for i in range(burst):
            assert wait([here], WAIT) == [here]
            assert here.recv() == 2 * (round_ + i)
    here.send(None)
    assert done.wait(WAIT)
    assert wait([here], 0) == []            # drained, and the child sends nothing more
    here.send("bye")
    joined(child)
    here.close()


def end_with_idle_peer(ctx):
    """One end of a duplex Pipe, and a child holding the other end and doing nothing."""
    here, there = shmproc.Pipe()
    ready = ctx.Event()
    child = ctx.Process(target=support_reduction.hold_connection, args=(there, ready))
    child.start()
    there.close()
    assert ready.wait(WAIT)
    return here, child


@pytest.mark.timeout(60)
def test_eof_when_the_peer_process_is_killed(any_ctx):
    here, child = end_with_idle_peer(any_ctx)
    here.send("unread")                     # the child's ring holds this when it dies
    assert wait([here], 0) == []
    os.kill(child.pid, signal.SIGKILL)
    assert wait([here], WAIT) == [here]
    with pytest.raises(EOFError):
        here.recv()
    child.join()
    here.close()


@pytest.mark.timeout(60)
def test_blocked_writer_gets_broken_pipe_when_the_reader_dies(any_ctx):
    here, child = end_with_idle_peer(any_ctx)
    killer = threading.Timer(0.3, os.kill, (child.pid, signal.SIGKILL))
    killer.start()
    chunk = b"x" * 60_000
    try:
        with pytest.raises(BrokenPipeError):
            for _ in range(10_000):         # far more than the ring holds: the writer blocks
                here.send_bytes(chunk)
    finally:
        killer.join()
        child.join()
        here.close()


def test_descriptor_after_many_waits_on_an_unwatched_peer(tmp_path):
    # The sender waits with the standard library's wait() (each call may precede a passed
    # descriptor, so each message after it carries a byte) while the receiver never asks for its
    # descriptor: those bytes pile up in front, and recv_handle must still find the descriptor.
    a, b = shmproc.Pipe()
    for i in range(300):
        multiprocessing.connection.wait([a], 0)
        a.send(i)
        assert b.recv() == i
    (tmp_path / "f").write_bytes(b"passed")
    with open(tmp_path / "f", "rb") as f:
        stdlib_reduction.send_handle(a, f.fileno(), os.getpid())
    a.send("after")
    fd = stdlib_reduction.recv_handle(b)
    assert os.pread(fd, 6, 0) == b"passed"
    os.close(fd)
    assert multiprocessing.connection.wait([b], 0) == [b]
    assert b.recv() == "after"
    assert multiprocessing.connection.wait([b], 0) == []
    a.close()
    b.close()


def test_descriptor_over_a_connection_sent_through_a_queue(any_ctx, tmp_path):
    here, there = shmproc.Pipe()
    q = shmproc.Queue()
    go = any_ctx.Event()
    child = any_ctx.Process(target=support_reduction.receive_connection_then_descriptor,
                            args=(q, go))
    child.start()
    q.put(there)
    numbers = [there._reader.fileno(), there._writer.fileno()]
    there.close()                           # the keeper holds its sockets until the child has them
    with open(tmp_path / "out", "wb") as f:
        # A file now has the closed sockets' descriptor numbers: the child must not take it for
        # them (opening them through /proc would succeed).
        numbers = [number for number in numbers if number != f.fileno()]
        for number in numbers:
            os.dup2(f.fileno(), number, inheritable=False)
        go.set()
        stdlib_reduction.send_handle(here, f.fileno(), child.pid)
        assert here.recv() == "done"
        joined(child)
        for number in numbers:
            os.close(number)
    assert (tmp_path / "out").read_bytes() == b"over a connection from a queue"
    here.close()
    q.close()
