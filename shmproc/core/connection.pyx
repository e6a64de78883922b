# connection: one end of a Pipe in one direction, what shmproc.connection.Connection wraps: a
# reading end (recv, recv_bytes, poll: EOF once every writer is gone) or a writing end (send,
# send_bytes: BrokenPipeError once every reader is gone), over one Ring.


cdef class ConnectionEnd:
    """The reading or the writing end of one direction of a Pipe (or a queue's reading end)."""
    cdef Ring ring
    cdef object __weakref__

    def __init__(self):
        raise TypeError("ConnectionEnd objects are made by Pipe(), not directly")

    def __reduce__(self):
        check_open(self)
        return (_rebuild_connection_end, (ring_handle(self.ring),))

    def close(self):
        if self.ring is not None:
            self.ring.close()

    def send(self, obj):
        """Connection.send: append obj, pickled here."""
        cdef encoded_t item
        check_open(self)
        cdef uint64_t pickled_before = handles_pickled
        owner = encode_object(obj, &item)
        if handles_pickled != pickled_before:
            deposit_handles(self.ring, pickled_before)
        self.ring.send_encoded(&item, owner, True, NO_DEADLINE)

    def send_bytes(self, buffer, Py_ssize_t offset=0, size=None):
        """Connection.send_bytes: append the bytes of a buffer as they are."""
        cdef encoded_t item
        check_open(self)
        view = memoryview(buffer)
        if view.itemsize > 1:
            view = view.cast("B")
        cdef Py_ssize_t length = len(view)
        if offset < 0:
            raise ValueError("offset is negative")
        if length < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = length - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > length:
            raise ValueError("buffer length < offset + size")
        owner = encode_raw(view[offset:offset + size], &item)
        self.ring.send_encoded(&item, owner, True, NO_DEADLINE)

    def recv(self):
        """Connection.recv: the next message; EOFError once drained and every writer is gone."""
        check_open(self)
        return self.ring.receive(True, NO_DEADLINE, False)

    def recv_bytes(self):
        """Connection.recv_bytes: the next message's bytes."""
        check_open(self)
        return self.ring.receive(True, NO_DEADLINE, True)

    def poll(self, timeout=0.0):
        """Connection.poll: wait up to timeout (None: forever) for a message or EOF."""
        cdef int64_t deadline = NO_DEADLINE if timeout is None else deadline_after(timeout)
        check_open(self)
        return self.ring.poll(timeout is None or timeout > 0, deadline)

    def fileno(self, ConnectionEnd writer=None):
        """A descriptor that select() reports readable while a message (or EOF) is waiting. writer:
        the same duplex Connection's writing end, whose stream the caller may also write into
        through this descriptor (the standard library's send_handle does)."""
        check_open(self)
        if writer is not None and writer.ring is not None and writer.ring.notify.is_socket:
            notify_before_foreign_bytes(writer.ring.ring)
        return notify_fileno(self.ring.ring, &self.ring.notify)


cdef inline int check_open(ConnectionEnd end) except -1:
    if end.ring is None or end.ring.closed:
        raise_unusable_end(end)
    return 0


cdef int raise_unusable_end(ConnectionEnd end) except -1:
    if end.ring is None:       # made with ConnectionEnd.__new__, bypassing Pipe()
        raise ValueError("this ConnectionEnd was not made by Pipe()")
    raise OSError("handle is closed")


cdef ConnectionEnd connection_end(Ring ring):
    cdef ConnectionEnd end = ConnectionEnd.__new__(ConnectionEnd)
    end.ring = ring
    return end


def open_pipe_ends(bint duplex, capacity=PIPE_CAPACITY):
    """The ends of a new Pipe: [(reading end, writing end)] per direction (channel.pyx)."""
    return [(connection_end(reader), connection_end(writer))
            for reader, writer in new_pipe_rings(duplex, capacity)]


def queue_reading_end(QueueCore queue):
    """A reading end over a queue's own ring (closing it closes the queue in this process), for
    multiprocessing.connection.wait() and for code that reads a queue's `_reader`."""
    check_opened(queue)
    return connection_end(queue.ring)


def _rebuild_connection_end(handle):
    return connection_end(attach_ring(handle))
