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


def send_handles_with_data(conn, path):
    """Child side of the ordering test: data, a descriptor (the standard library's send_handle),
    data; then receive a descriptor back and write through it."""
    import multiprocessing.reduction as stdlib_reduction
    with open(path, "rb") as f:
        conn.send("before")
        stdlib_reduction.send_handle(conn, f.fileno(), os.getppid())
        conn.send("after")
    fd = stdlib_reduction.recv_handle(conn)
    os.write(fd, b"from the child")
    os.close(fd)
    conn.recv()                 # stay until the parent has checked everything


def echo_until_done(conn, done):
    """Reply to each request with its double until None; then say (through an Event, not the
    Pipe) that every reply, notify byte included, has been sent; then wait for a last message (a
    forked child holds the parent's end too, so it would not see EOF)."""
    while (request := conn.recv()) is not None:
        conn.send(request * 2)
    done.set()
    conn.recv()


def hold_connection(conn, ready):
    """Hold a Pipe's end, doing nothing, until killed."""
    import time
    ready.set()
    while True:
        time.sleep(60)


def receive_connection_then_descriptor(q, go):
    """Get a Pipe's end through a shmproc queue once told to (its sockets come from the keeper),
    then receive a descriptor over it and write through it."""
    import multiprocessing.reduction as stdlib_reduction
    go.wait()
    conn = q.get()
    fd = stdlib_reduction.recv_handle(conn)
    os.write(fd, b"over a connection from a queue")
    os.close(fd)
    conn.send("done")


def send_batch(conn, rnd, path, destination_pid):
    """One side's turn in the notify stress conversation: maybe a descriptor (the standard
    library's send_handle), then a count and that many messages, asking for fileno() now and then
    (as a program about to pass a descriptor would)."""
    import multiprocessing.reduction as stdlib_reduction
    count = rnd.randint(0, 5)
    if rnd.random() < 0.3:
        conn.send("handle")
        with open(path, "rb") as f:
            stdlib_reduction.send_handle(conn, f.fileno(), destination_pid)
    else:
        conn.send("plain")
    conn.send(count)
    for i in range(count):
        conn.send(i)
        if rnd.random() < 0.2:
            conn.fileno()


def receive_batch(conn, rnd):
    """The other side's turn: each message is waited for with either wait() first (a missed
    wake-up fails the conversation)."""
    import multiprocessing.connection
    import multiprocessing.reduction as stdlib_reduction

    import shmproc.connection
    if conn.recv() == "handle":
        os.close(stdlib_reduction.recv_handle(conn))
    for i in range(conn.recv()):
        wait = rnd.choice([multiprocessing.connection.wait, shmproc.connection.wait])
        if wait([conn], 30) != [conn]:
            raise AssertionError(f"missed wake-up before message {i}")
        if conn.recv() != i:
            raise AssertionError("messages out of order")


def converse_as_child(conn, seed, rounds, path):
    import random
    rnd = random.Random(seed)
    for _ in range(rounds):
        receive_batch(conn, rnd)
        send_batch(conn, rnd, path, os.getppid())
    conn.send("end")
    conn.recv()                 # stay until the parent has checked readiness
