"""Descriptor passing (send_handle/recv_handle) over shmproc connections under every start method,
and connections that pickle to another process through a socket connection or a queue."""
import multiprocessing
import os

import pytest
import support_reduction
from support_queues import joined

import shmproc
from shmproc import reduction
from shmproc.connection import Listener

KEY = b"reduction test key"


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def shm_ctx(request):
    return shmproc.get_context(request.param)


def test_module_is_reachable_as_multiprocessings():
    assert shmproc.reduction is reduction
    assert reduction.ForkingPickler is multiprocessing.reduction.ForkingPickler
    assert reduction.HAVE_SEND_HANDLE


def test_send_handle_over_a_pipe(shm_ctx, tmp_path):
    parent_end, child_end = shm_ctx.Pipe()
    child = shm_ctx.Process(target=support_reduction.write_through_received_fd,
                            args=(child_end, b"through the descriptor"))
    child.start()
    path = tmp_path / "out"
    with open(path, "wb") as f:
        reduction.send_handle(parent_end, f.fileno(), child.pid)
    # the descriptor was duplicated: closing ours at once is fine
    joined(child)
    assert path.read_bytes() == b"through the descriptor"


def test_send_handle_still_serves_standard_library_pipes(tmp_path):
    a, b = multiprocessing.Pipe()
    with open(tmp_path / "f", "wb") as f:
        reduction.send_handle(a, f.fileno(), os.getpid())
    fd = reduction.recv_handle(b)
    os.write(fd, b"x")
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"x"


def test_send_handle_and_recv_handle_are_the_standard_librarys():
    # A duplex shmproc Pipe is a socketpair underneath, as multiprocessing's is.
    assert reduction.send_handle is multiprocessing.reduction.send_handle
    assert reduction.recv_handle is multiprocessing.reduction.recv_handle


def test_one_way_pipe_refuses_descriptors_as_multiprocessings_does(tmp_path):
    for module in (multiprocessing, shmproc):
        reader, writer = module.Pipe(duplex=False)
        with open(tmp_path / "f", "wb") as f, pytest.raises(OSError):
            reduction.send_handle(writer, f.fileno(), os.getpid())
        reader.close()
        writer.close()


def test_connection_pickles_through_a_socket_connection(shm_ctx):
    here, there = shm_ctx.Pipe()
    with Listener(family="AF_UNIX", authkey=KEY) as listener:
        child = shm_ctx.Process(target=support_reduction.receive_connection_and_reply,
                                args=(listener.address, KEY))
        child.start()
        with listener.accept() as link:
            link.send(there)
            there.close()                # the pickle carries duplicates, as multiprocessing's does
            here.send("hello")
            assert here.recv() == ("got", "hello")
            assert link.recv() == "done"
    joined(child)


def test_connection_pickles_through_a_queue(shm_ctx):
    here, there = shm_ctx.Pipe()
    q = shm_ctx.Queue()
    child = shm_ctx.Process(target=support_reduction.answer_on_connection_from_queue, args=(q,))
    child.start()
    q.put(there)
    there.close()
    here.send(21)
    assert here.recv() == 42
    joined(child)


def test_register_applies_to_shmproc_messages():
    try:
        reduction.register(support_reduction.Registered, support_reduction.reduce_registered)
        a, b = shmproc.Pipe()
        a.send(support_reduction.Registered(7))
        got = b.recv()
        assert (got.value, got.via) == (7, "registered reducer")
        assert reduction.ForkingPickler._extra_reducers[support_reduction.Registered] \
            is support_reduction.reduce_registered
    finally:
        import copyreg
        copyreg.dispatch_table.pop(support_reduction.Registered, None)
        reduction.ForkingPickler._extra_reducers.pop(support_reduction.Registered, None)


def test_sockets_and_socket_connections_as_process_arguments(shm_ctx):
    import socket
    mine, theirs = socket.socketpair()
    with Listener(family="AF_UNIX") as listener:
        from shmproc.connection import Client
        client = Client(listener.address)
        served = listener.accept()
        child = shm_ctx.Process(target=support_reduction.answer_on_socket_and_connection,
                                args=(theirs, served))
        child.start()
        theirs.close()
        served.close()
        mine.sendall(b"abc")
        assert mine.recv(16) == b"ABC"
        client.send(1)
        assert client.recv() == 2
        joined(child)
        client.close()
    mine.close()


STANDARD_CONNECTION_LOADED_LATE = """
import sys
import shmproc.pool_worker
import shmproc.queues
# A spawned pool worker loads neither: they cost it a tenth of its start (docs/pool.md).
assert "multiprocessing.connection" not in sys.modules
assert "multiprocessing.pool" not in sys.modules
import multiprocessing.connection
here, there = multiprocessing.connection.Pipe()
q = shmproc.queues.SimpleQueue()
q.put(there)                    # a duplicate of the descriptor, not its bare number
there.close()
again = q.get()
again.send("through")
assert here.recv() == "through"
print("ok")
"""


def test_standard_connection_loaded_after_the_queues_still_pickles_as_multiprocessings():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", STANDARD_CONNECTION_LOADED_LATE],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
