"""shmproc.connection's Listener and Client: families and addresses, wire compatibility with the
standard library's in both directions, the unauthenticated-listener warning. Loopback only."""
import multiprocessing.connection as mp_connection
import os
import threading
import warnings

import pytest

from shmproc import connection
from shmproc.connection import AuthenticationError, Client, Listener

KEY = b"shared secret"


def serve_one(listener, reply):
    """Accept one connection in a thread, echo one message back transformed, return the thread."""
    errors = []

    def run():
        try:
            with listener.accept() as conn:
                conn.send(reply(conn.recv()))
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_public_names_are_multiprocessings():
    for name in ("Listener", "Client", "Pipe", "wait", "Connection", "families", "address_type",
                 "arbitrary_address", "answer_challenge", "deliver_challenge"):
        assert hasattr(connection, name), name
    assert connection.families == mp_connection.families
    assert connection.address_type(("127.0.0.1", 0)) == "AF_INET"
    assert connection.address_type("/tmp/x") == "AF_UNIX"
    assert connection.address_type("\0abstract") == "AF_UNIX"
    assert connection.arbitrary_address("AF_INET") == ("localhost", 0)


@pytest.mark.parametrize("family", ["AF_INET", "AF_UNIX"])
@pytest.mark.parametrize("server, client", [
    (Listener, Client),
    (Listener, mp_connection.Client),
    (mp_connection.Listener, Client),
], ids=["shmproc-shmproc", "shmproc-stdlib", "stdlib-shmproc"])
def test_authenticated_round_trip(family, server, client):
    with server(family=family, authkey=KEY) as listener:
        thread, errors = serve_one(listener, lambda x: x * 2)
        with client(listener.address, authkey=KEY) as conn:
            conn.send([1, "a"])
            assert conn.recv() == [1, "a", 1, "a"]
        thread.join(10)
    assert not errors


@pytest.mark.parametrize("server, client", [(Listener, mp_connection.Client),
                                            (mp_connection.Listener, Client)],
                         ids=["shmproc-listens", "stdlib-listens"])
def test_wrong_key_is_refused_both_ways(server, client):
    with server(family="AF_INET", authkey=KEY) as listener:
        refused = []

        def accept():
            try:
                listener.accept()
            except (AuthenticationError, EOFError, OSError) as exc:
                refused.append(exc)

        thread = threading.Thread(target=accept)
        thread.start()
        with pytest.raises((AuthenticationError, EOFError, ConnectionError)):
            client(listener.address, authkey=b"another key")
        thread.join(10)
    assert refused


def test_abstract_unix_address():
    address = f"\0shmproc-test-{os.getpid()}"
    with Listener(address, authkey=KEY) as listener:
        assert listener.address == address.encode()     # as the standard library reports it
        thread, errors = serve_one(listener, str.upper)
        with Client(address, authkey=KEY) as conn:
            conn.send("abc")
            assert conn.recv() == "ABC"
        thread.join(10)
    assert not errors


def test_unix_socket_file_is_removed_on_close():
    with Listener(family="AF_UNIX") as listener:
        path = listener.address
        assert os.path.exists(path)
    assert not os.path.exists(path)


def test_loopback_without_authkey_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Listener(("127.0.0.1", 0)).close()
        Listener(family="AF_UNIX").close()


@pytest.mark.parametrize("address, reachable", [
    (("0.0.0.0", 5000), True), (("::", 5000, 0, 0), True), (("192.0.2.7", 5000), True),
    (("127.0.0.1", 5000), False), (("127.8.9.10", 5000), False), (("::1", 5000, 0, 0), False),
    ("/tmp/listener-x", False), (b"\0abstract", False),
])
def test_which_bound_addresses_other_hosts_reach(address, reachable):
    from shmproc.listener import _reachable_from_other_hosts
    assert _reachable_from_other_hosts(address) is reachable


def test_reachable_listener_without_authkey_warns(monkeypatch):
    # Network tests stay on loopback: the bound address is declared reachable instead.
    import shmproc.listener
    monkeypatch.setattr(shmproc.listener, "_reachable_from_other_hosts", lambda address: True)
    with pytest.warns(connection.UnauthenticatedListenerWarning, match="authkey"):
        Listener(("127.0.0.1", 0)).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Listener(("127.0.0.1", 0), authkey=KEY).close()


def test_accepted_connection_is_a_socket_connection():
    with Listener(family="AF_INET") as listener:
        thread, errors = serve_one(listener, type)
        with Client(listener.address) as conn:
            assert isinstance(conn, connection.SocketConnection)
            conn.send(None)
            assert conn.recv() is type(None)
        thread.join(10)
    assert not errors


def test_wait_takes_every_kind_of_waitable_together():
    import socket

    import shmproc
    from shmproc.connection import Pipe, wait
    ours_r, ours_w = Pipe()
    theirs_r, theirs_w = mp_connection.Pipe()
    sock_a, sock_b = socket.socketpair()
    process = shmproc.Process(target=int)
    process.start()
    process.join(30)
    try:
        everything = [ours_r, theirs_r, sock_a, process.sentinel]
        assert wait(everything, timeout=30) == [process.sentinel]
        ours_w.send(1)
        theirs_w.send(2)
        sock_b.send(b"3")
        ready = wait(everything, timeout=30)
        assert set(map(id, ready)) == set(map(id, everything))
        assert wait([ours_r], timeout=-1) == [ours_r]      # a negative timeout polls, as there
    finally:
        for closeable in (ours_r, ours_w, theirs_r, theirs_w, sock_a, sock_b):
            closeable.close()


def test_connection_on_a_descriptor_is_the_standard_librarys():
    read_fd, write_fd = os.pipe()
    reader = connection.Connection(read_fd, writable=False)
    writer = connection.Connection(write_fd, readable=False)
    assert isinstance(reader, connection.SocketConnection)
    writer.send_bytes(b"abc")
    assert reader.recv_bytes() == b"abc"
    reader.close()
    writer.close()
    with pytest.raises((ValueError, OSError)):
        connection.Connection(-1)
    assert connection.CHALLENGE == mp_connection.CHALLENGE     # the rest of the stdlib module


def test_socket_connection_pickles_through_a_shmproc_queue():
    from shmproc.queues import Queue
    with Listener(family="AF_UNIX") as listener:
        thread, errors = serve_one(listener, lambda x: x + 1)
        client = Client(listener.address)
        q = Queue()
        q.put(client)          # as multiprocessing pickles it: a duplicate of the descriptor
        client.close()
        again = q.get(timeout=30)
        again.send(41)
        assert again.recv() == 42
        again.close()
        thread.join(10)
    assert not errors


# -- another Python's standard library on the other end (its own authentication protocol) -------

INTEROP_SCRIPT = """
import sys
from multiprocessing.connection import Client, Listener
key = sys.argv[2].encode()
if sys.argv[1] == "client":
    with Client(("127.0.0.1", int(sys.argv[3])), authkey=key) as conn:
        conn.send(conn.recv() * 2)
else:
    with Listener(("127.0.0.1", 0), authkey=key) as listener:
        print(listener.address[1], flush=True)
        with listener.accept() as conn:
            conn.send(conn.recv() * 2)
"""


def other_pythons():
    """Interpreters of other versions to talk to: SHMPROC_INTEROP_PYTHONS (os.pathsep-separated),
    and python3.N on PATH that run."""
    import shutil
    import subprocess
    import sys
    names = [p for p in os.environ.get("SHMPROC_INTEROP_PYTHONS", "").split(os.pathsep) if p]
    names += [f"python3.{minor}" for minor in range(11, 16) if minor != sys.version_info[1]]
    found = {}
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            version = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if version and version != str(sys.version_info[:2]):
            found.setdefault(version, path)
    return sorted(found.items())


@pytest.mark.parametrize("version, python", other_pythons() or
                         [pytest.param(None, None, marks=pytest.mark.skip("no other Python"))])
def test_wire_compatible_with_another_pythons_standard_library(version, python):
    import subprocess
    with Listener(("127.0.0.1", 0), authkey=KEY) as listener:
        child = subprocess.Popen([python, "-c", INTEROP_SCRIPT, "client", KEY.decode(),
                                  str(listener.address[1])])
        try:
            with listener.accept() as conn:
                conn.send(21)
                assert conn.recv() == 42
        finally:
            assert child.wait(60) == 0
    child = subprocess.Popen([python, "-c", INTEROP_SCRIPT, "listener", KEY.decode()],
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        with Client(("127.0.0.1", port), authkey=KEY) as conn:
            conn.send(4)
            assert conn.recv() == 8
    finally:
        child.stdout.close()
        assert child.wait(60) == 0
