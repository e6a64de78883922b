"""Descriptor passing and pickling registration (multiprocessing.reduction), for shmproc connections too.

Everything here is the standard library's own -- ``send_handle``/``recv_handle``, ``ForkingPickler``,
``register``, ``dump``, ``DupFd``, ``sendfds``/``recvfds``, the registered reducers for sockets and
connections -- but ``register``, which also registers with ``copyreg`` (see below). A duplex shmproc
``Pipe``'s ``fileno()`` is its end of a Unix socketpair, as a duplex ``multiprocessing.Pipe``'s is,
so ``send_handle``/``recv_handle`` work over it unchanged, under every start method, and the
descriptor stays in the socket even if the sender exits. As with ``multiprocessing``, a one-way Pipe
is a pipe, over which descriptors cannot pass (``OSError``), and messages sent before a descriptor
must be received before it. Importing this module also registers the standard library's socket
connection with ``copyreg``; shmproc's queues and pipes import it.
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
    recv_handle,
    recvfds,
    send_handle,
    sendfds,
)
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
