"""Pipe and Connection on shared-memory message rings; wait() over them (multiprocessing.connection).

A Pipe is one channel segment with a ring per direction (shmproc/core/connection.pyx over
core/ring.pyx). ``send`` pickles in the caller and copies into the ring; ``recv`` copies out.
``recv`` raises EOFError once the ring is drained and every sending Connection is gone -- closed,
or its process exited or was killed -- in every process that held one (as with multiprocessing, a
forked child that inherits the sending end keeps it open until it closes it).

``fileno()`` gives a descriptor that select() and ``wait()`` see readable while a message or EOF is
waiting; asking for it makes every later send to an empty ring write one byte to that descriptor.
A duplex Pipe's descriptors are the two ends of one Unix socketpair (multiprocessing's duplex Pipe
is one too), so multiprocessing.reduction.send_handle/recv_handle pass descriptors over them; a
one-way Pipe's are a pipe. The protocol: docs/internals/ring.md, "The notify descriptor".

A Connection pickles to another process (through a queue, a Pipe or a socket connection) as a
handle that carries duplicates of its descriptors, so the sender may close its end once sent.

``Listener``, ``Client``, the address helpers and authentication are in shmproc/listener.py (mostly
the standard library's; that file says whose is what), re-exported here so that ``shmproc.connection``
stands in for ``multiprocessing.connection``.
"""
import multiprocessing.connection as _mp_connection
import multiprocessing.context as _mp_context
import multiprocessing.reduction as _mp_reduction
import os
from multiprocessing import AuthenticationError, BufferTooShort

from shmproc import _core
from shmproc import listener as _listener
from shmproc import reduction as _reduction  # noqa: F401 - sockets' connections pickle in messages
from shmproc.listener import (  # noqa: F401
    Client,
    Listener,
    SocketConnection,
    UnauthenticatedListenerWarning,
    address_type,
    answer_challenge,
    arbitrary_address,
    default_family,
    deliver_challenge,
    families,
)

__all__ = ["AuthenticationError", "BufferTooShort", "Connection", "Pipe", "wait"] + _listener.__all__


class Connection:
    """One end of a Pipe: multiprocessing's Connection API over a reading and a writing
    _core.ConnectionEnd (either may be None).

    ``Connection(handle, readable=True, writable=True)`` with a descriptor (an int), as
    multiprocessing.connection.Connection is called, gives the standard library's connection over
    that socket or pipe descriptor (a ``SocketConnection``)."""

    def __new__(cls, reader, writer=None, *args, **kwargs):
        if isinstance(reader, int):
            return SocketConnection(reader, *(() if writer is None else (writer,)) + args, **kwargs)
        return super().__new__(cls)

    def __init__(self, reader, writer):
        self._reader = reader
        self._writer = writer
        self._closed = False

    @property
    def closed(self):
        return self._closed

    @property
    def readable(self):
        return self._reader is not None

    @property
    def writable(self):
        return self._writer is not None

    def _check_closed(self):
        if self._closed:
            raise OSError("handle is closed")

    def _check_readable(self):
        if self._reader is None:
            raise OSError("connection is write-only")

    def _check_writable(self):
        if self._writer is None:
            raise OSError("connection is read-only")

    def send(self, obj):
        """Send a picklable object (pickled here, so an unpicklable one raises here)."""
        self._check_closed()
        self._check_writable()
        self._writer.send(obj)

    def send_bytes(self, buf, offset=0, size=None):
        """Send the bytes of a bytes-like object (offset and size in bytes)."""
        self._check_closed()
        self._check_writable()
        self._writer.send_bytes(buf, offset, size)

    def recv(self):
        """Receive an object; EOFError when nothing is left and every sender is gone."""
        self._check_closed()
        self._check_readable()
        return self._reader.recv()

    def recv_bytes(self, maxlength=None):
        """Receive a message's bytes. A message longer than maxlength raises OSError and is lost."""
        self._check_closed()
        self._check_readable()
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        data = self._reader.recv_bytes()
        if maxlength is not None and len(data) > maxlength:
            raise OSError("bad message length")
        return data

    def recv_bytes_into(self, buf, offset=0):
        """Receive a message's bytes into a writable buffer at offset (bytes); return its length.
        BufferTooShort (holding the message) if it does not fit."""
        self._check_closed()
        self._check_readable()
        with memoryview(buf) as view:
            bytesize = view.itemsize * len(view)
            if offset < 0:
                raise ValueError("negative offset")
            elif offset > bytesize:
                raise ValueError("offset too large")
            data = self._reader.recv_bytes()
            size = len(data)
            if bytesize < offset + size:
                raise BufferTooShort(data)
            view.cast("B")[offset:offset + size] = data
            return size

    def poll(self, timeout=0.0):
        """Whether a message (or EOF) is waiting, waiting up to timeout seconds (None: forever)."""
        self._check_closed()
        self._check_readable()
        return self._reader.poll(timeout)

    def fileno(self):
        """A descriptor that select() sees readable while a message or EOF is waiting. For a duplex
        Connection, its end of the Pipe's socketpair (descriptors pass over it with
        multiprocessing.reduction.send_handle, as over multiprocessing's)."""
        self._check_closed()
        if self._reader is not None:
            return self._reader.fileno(self._writer)
        return self._writer.fileno()

    def close(self):
        if not self._closed:
            self._closed = True
            for end in (self._reader, self._writer):
                if end is not None:
                    end.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __reduce__(self):
        # Pickled to another process (a queue, a pipe, a socket connection), a Connection carries
        # duplicates of its descriptors, as multiprocessing's do, so the sender may close its end
        # right after sending; while a process is being started they travel with the start.
        if self._closed:
            raise OSError("handle is closed")
        if _mp_context.get_spawning_popen() is not None:
            return (Connection, (self._reader, self._writer))
        duplicates: dict = {}
        return (_rebuild_connection, (_end_in_transit(self._reader, duplicates),
                                      _end_in_transit(self._writer, duplicates)))

    def __repr__(self):
        state = "closed" if self._closed else ("duplex" if self._reader and self._writer else
                                               "read-only" if self._reader else "write-only")
        return f"<shmproc.connection.Connection {state} at {id(self):#x}>"


def _end_in_transit(end, duplicates):
    """An end's rebuild function and arguments, its handle (the last argument) with each of this
    process's descriptors, named (pid, fd, token) there, replaced by a duplicate that the standard
    library's resource sharer hands over (attaching takes either). One duplicate per descriptor:
    both ends of a duplex Connection share the channel's segment."""
    if end is None:
        return None
    rebuild, args = end.__reduce__()
    if _core.pickling_for_a_ring():
        return rebuild, args            # the ring deposits the descriptors with the keeper
    own = os.getpid()

    def carried(item):
        if not (isinstance(item, tuple) and len(item) == 3 and item[0] == own):
            return item
        if item[1] not in duplicates:
            duplicates[item[1]] = _mp_reduction.DupFd(item[1])
        return duplicates[item[1]]

    return rebuild, args[:-1] + (tuple(carried(item) for item in args[-1]),)


def _rebuild_connection(reader, writer):
    ends = [None if end is None else end[0](*end[1]) for end in (reader, writer)]
    return Connection(*ends)


def Pipe(duplex=True):
    """Two Connections: both ends send and receive if duplex, else the first only receives and the
    second only sends (multiprocessing.Pipe)."""
    pairs = _core.open_pipe_ends(duplex)
    if duplex:
        (reader0, writer0), (reader1, writer1) = pairs
        return Connection(reader0, writer1), Connection(reader1, writer0)
    (reader, writer), = pairs
    return Connection(reader, None), Connection(None, writer)


def wait(object_list, timeout=None):
    """Wait until an object in object_list is ready; return the ready ones
    (multiprocessing.connection.wait, which does the waiting: every object here has a descriptor).
    Takes shmproc's and the standard library's Connections together, queues (or their
    ``_reader``), sockets, process sentinels, and anything else with a fileno() or an int
    descriptor; timeouts as there (negative: do not wait)."""
    # A duplex Connection's own fileno() tells its peer that other bytes may follow in the socket
    # (its caller may pass a descriptor); waiting writes nothing, so it asks for the descriptor
    # without that, which spares the peer a byte per message.
    waitables = {}
    for obj in object_list:
        if type(obj) is Connection and obj._reader is not None and obj._writer is not None:
            waitables[id(obj)] = _Waitable(obj)
    if not waitables:
        return _mp_connection.wait(object_list, timeout)
    ready = _mp_connection.wait([waitables.get(id(obj), obj) for obj in object_list], timeout)
    return [obj.connection if type(obj) is _Waitable else obj for obj in ready]


class _Waitable:
    """A duplex Connection as wait() sees it."""

    __slots__ = ("connection",)

    def __init__(self, connection):
        self.connection = connection

    def fileno(self):
        self.connection._check_closed()
        return self.connection._reader.fileno()


def __getattr__(name):
    # The rest of multiprocessing.connection (its protocol constants, SocketListener, BUFSIZE, ...)
    # is the standard library's, for code that reaches for it through this module.
    try:
        return getattr(_mp_connection, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
