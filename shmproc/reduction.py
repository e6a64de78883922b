"""Descriptor passing and pickling registration (multiprocessing.reduction), for shmproc connections too.

multiprocessing passes a descriptor by writing it (SCM_RIGHTS) into the Unix socket that carries a
connection's data. A shmproc Pipe carries its data in shared memory, and its ``fileno()`` is a notify
descriptor, so ``send_handle``/``recv_handle`` on a shmproc Connection send the descriptor as a
message instead: a duplicate is made at once (so the caller may close its descriptor right after
``send_handle``), and it travels the way multiprocessing pickles a descriptor (``DupFd``): with the
process start while a process is being started, otherwise through the standard library's resource
sharer, a thread of the sending process that hands the duplicate over an authenticated Unix socket.
So, as with a pickled socket in multiprocessing, the sending process must still be running when the
receiver calls ``recv_handle``.

Every other connection (the standard library's, the sockets of ``Listener``/``Client``) goes to the
standard library's functions, and everything else here -- ``ForkingPickler``, ``register``, ``dump``,
``DupFd``, ``sendfds``/``recvfds``, the registered reducers for sockets and connections -- is the
standard library's own. Importing this module also registers the standard library's socket
connection with ``copyreg`` (see below); shmproc's queues and pipes import it.
"""
import copyreg
import multiprocessing.connection
from multiprocessing.reduction import (
    ACKNOWLEDGE,
    HAVE_SEND_HANDLE,
    AbstractReducer,
    DupFd,
    ForkingPickler,
    dump,
    recvfds,
    sendfds,
)
from multiprocessing.reduction import recv_handle as _stdlib_recv_handle
from multiprocessing.reduction import send_handle as _stdlib_send_handle
from typing import Any

# Typed as Any: the standard library's type stubs leave out reduce_connection.
_mp_connection: Any = multiprocessing.connection

# shmproc pickles messages with plain pickle first (fast), and a standard-library socket connection
# does not refuse plain pickle: it would be copied as a bare descriptor number, meaningless in the
# receiver. Registered here, it pickles everywhere as ForkingPickler pickles it (a duplicate of the
# descriptor, handed over at process start or by the resource sharer).
copyreg.pickle(_mp_connection.Connection, _mp_connection.reduce_connection)

__all__ = ["ACKNOWLEDGE", "HAVE_SEND_HANDLE", "AbstractReducer", "DupFd", "ForkingPickler", "dump",
           "recv_handle", "recvfds", "register", "send_handle", "sendfds"]


def register(type_, reduce):
    """Register a reduce function for a type (multiprocessing.reduction.register). shmproc pickles
    messages with plain pickle, so the function is registered with ``copyreg`` too: it then applies
    to every pickling of that type in this process, not only multiprocessing's."""
    ForkingPickler.register(type_, reduce)
    copyreg.pickle(type_, reduce)


class PassedHandle:
    """A descriptor in transit over a shmproc Connection: a duplicate, carried like a pickled one."""

    __slots__ = ("_dup",)

    def __init__(self, fd):
        self._dup = DupFd(fd)

    def detach(self):
        """This process's own descriptor (once)."""
        return self._dup.detach()

    def __repr__(self):
        return f"<shmproc.reduction.PassedHandle {self._dup!r}>"

    def __reduce__(self):
        return (_rebuild_passed_handle, (self._dup,))


def _rebuild_passed_handle(dup):
    handle = PassedHandle.__new__(PassedHandle)
    handle._dup = dup
    return handle


def _is_shmproc_connection(conn):
    from shmproc.connection import Connection
    return isinstance(conn, Connection)


def send_handle(conn, handle, destination_pid):
    """Send a descriptor to the process at the other end of ``conn``."""
    if not _is_shmproc_connection(conn):
        return _stdlib_send_handle(conn, handle, destination_pid)
    conn.send(PassedHandle(handle))
    return None


def recv_handle(conn):
    """Receive a descriptor sent with ``send_handle``; RuntimeError if the next message is not one."""
    if not _is_shmproc_connection(conn):
        return _stdlib_recv_handle(conn)
    message = conn.recv()
    if not isinstance(message, PassedHandle):
        raise RuntimeError(  # noqa: TRY004 - what multiprocessing raises here
            f"expected a descriptor (send_handle), received {type(message).__name__}")
    return message.detach()
