"""Module-level child targets for the descriptor-passing and connection-pickling tests (spawned
children import them)."""
import os

from shmproc import reduction


def write_through_received_fd(conn, data):
    fd = reduction.recv_handle(conn)
    os.write(fd, data)
    os.close(fd)


def receive_connection_and_reply(address, authkey):
    """Get a connection end through a socket connection (Listener/Client), then answer on it."""
    from shmproc.connection import Client
    with Client(address, authkey=authkey) as link:
        conn = link.recv()
        conn.send(("got", conn.recv()))
        link.send("done")


def answer_on_connection_from_queue(q):
    conn = q.get(timeout=60)
    conn.send(conn.recv() * 2)
    conn.close()


class Registered:
    """A type whose registered reducer marks what crossed."""

    def __init__(self, value, via="plain"):
        self.value, self.via = value, via


def reduce_registered(obj):
    return Registered, (obj.value, "registered reducer")


def answer_on_socket_and_connection(sock, conn):
    """Arguments pickled at process start by multiprocessing's registered reducers."""
    sock.sendall(sock.recv(16).upper())
    conn.send(conn.recv() + 1)
    sock.close()
    conn.close()
