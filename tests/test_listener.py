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


def test_all_interfaces_without_authkey_warns():
    with pytest.warns(connection.UnauthenticatedListenerWarning, match="authkey"):
        Listener(("0.0.0.0", 0)).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Listener(("0.0.0.0", 0), authkey=KEY).close()


def test_accepted_connection_is_a_socket_connection():
    with Listener(family="AF_INET") as listener:
        thread, errors = serve_one(listener, type)
        with Client(listener.address) as conn:
            assert isinstance(conn, connection.SocketConnection)
            conn.send(None)
            assert conn.recv() is type(None)
        thread.join(10)
    assert not errors
