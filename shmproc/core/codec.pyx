# codec: how a Python object becomes the payload of a ring record, and back (docs/queues.md).
#
# Exact ints, floats, strs and bytes are written as themselves: no pickle on either side, which is
# most of the cost of a small message. Everything else is pickled in the caller with protocol 5 and a
# buffer callback, so an unpicklable object raises in put() before the ring is touched, and a numpy
# array's data travels out of band: copied once, straight from the array into shared memory.
#
# A pickle with out-of-band buffers is laid out as shm_buffers_t (ring.h): the descriptor, the buffer
# lengths, then from data_start the stream and each buffer on a SHM_BUFFER_ALIGN boundary. The same
# layout is used inline in a ring record (SHM_RECORD_BUFFERS) and at the start of a spill range.

# encoded_t, a message encoded for a record, is declared in codec.pxd.

cdef object _dumps = _pickle.dumps
cdef object _loads = _pickle.loads


cdef inline uint64_t align_up(uint64_t n, uint64_t alignment) noexcept nogil:
    return (n + alignment - 1) & ~(alignment - 1)


cdef inline uint64_t layout_data_start(uint64_t nbuffers) noexcept nogil:
    return align_up(sizeof(shm_buffers_t) + 8 * nbuffers, SHM_BUFFER_ALIGN)


cdef object forking_dumps(object obj, object buffer_callback):
    """Pickle as multiprocessing's ForkingPickler does (sockets, Connections...): the slow path for
    objects that plain pickle refuses."""
    buf = _io.BytesIO()
    # positional: 3.11's ForkingPickler.__init__ takes no keyword arguments
    _mp_reduction.ForkingPickler(buf, 5, True, buffer_callback).dump(obj)
    return buf.getvalue()


# Plain pickle would copy a standard-library Connection as its bare descriptor number, meaningless in
# the receiver; multiprocessing's reduce_connection (a duplicate of the descriptor, as ForkingPickler
# sends it) is registered with copyreg instead. It is registered once multiprocessing.connection is
# loaded, not by loading it: no Connection exists before, and that module brings tempfile and shutil
# with it, some 14 million instructions, 7% of what a spawned pool worker runs before its first task.
cdef bint connection_reducer_registered = False
cdef dict loaded_modules = _sys.modules


cdef int ensure_connection_reducer() except -1:
    global connection_reducer_registered
    if connection_reducer_registered:
        return 0
    module = loaded_modules.get("multiprocessing.connection")
    connection = getattr(module, "Connection", None)
    reduce = getattr(module, "reduce_connection", None)
    if connection is not None and reduce is not None:
        _copyreg.pickle(connection, reduce)
        connection_reducer_registered = True
    return 0


def register_connection_reducer():
    """Plain pickle in this process pickles a standard-library Connection as multiprocessing does,
    from now on if multiprocessing.connection is loaded, else once it is (rings check at each
    pickling; other picklers, such as the pool worker's, call this first)."""
    ensure_connection_reducer()


def types_within(list values, frozenset types):
    """Whether the type of every item of values is one of types (exactly, not a subclass). The
    pool worker asks this of every batch of results: here a pointer comparison per item when the
    items are of one type, where Python's set(map(type, values)) costs ~12 ns an item."""
    cdef object last = None
    cdef object kind
    for item in values:
        kind = type(item)
        if kind is not last:
            if kind not in types:
                return False
            last = kind
    return True


cdef object pickle_with_buffers(object obj, list buffers):
    """The C pickler first; ForkingPickler only for what it refuses. The C pickler's own error is
    the one raised if both fail."""
    ensure_connection_reducer()
    try:
        return _dumps(obj, 5, buffer_callback=buffers.append)
    except (_pickle.PicklingError, TypeError, AttributeError):
        del buffers[:]
        try:
            return forking_dumps(obj, buffers.append)
        except Exception:
            pass
        raise


cdef object encode_object(object obj, encoded_t *e):
    """Fill e for obj; return the object that owns e.data (keep it alive until written)."""
    cdef type kind = type(obj)
    cdef int overflow = 0
    cdef long long as_int
    cdef double as_float
    cdef Py_ssize_t size
    e.nbuffers = 0
    if kind is int:
        as_int = PyLong_AsLongLongAndOverflow(obj, &overflow)
        if not overflow:
            memcpy(&e.scalar, &as_int, 8)
            e.kind, e.length, e.data = SHM_RECORD_INT, 8, <const char *>&e.scalar
            return obj
    elif kind is bytes:
        e.kind, e.length, e.data = SHM_RECORD_BYTES, len(<bytes>obj), PyBytes_AS_STRING(obj)
        return obj
    elif kind is float:
        as_float = PyFloat_AS_DOUBLE(obj)
        memcpy(&e.scalar, &as_float, 8)
        e.kind, e.length, e.data = SHM_RECORD_FLOAT, 8, <const char *>&e.scalar
        return obj
    elif kind is str:
        try:
            e.data = PyUnicode_AsUTF8AndSize(obj, &size)
            e.kind, e.length = SHM_RECORD_STR, size
            return obj
        except UnicodeEncodeError:      # lone surrogates: pickle copes
            pass
    cdef list buffers = []
    global ring_pickling_thread
    cdef unsigned long outer = ring_pickling_thread
    ring_pickling_thread = PyThread_get_thread_ident()
    try:
        stream = pickle_with_buffers(obj, buffers)
    finally:
        ring_pickling_thread = outer
    if not buffers:
        e.kind, e.length, e.data = SHM_RECORD_PICKLE, len(<bytes>stream), PyBytes_AS_STRING(stream)
        return stream
    raws = [buffer.raw() for buffer in buffers]
    e.kind, e.nbuffers, e.data = SHM_RECORD_BUFFERS, len(raws), NULL
    e.length = layout_size(len(<bytes>stream), raws)
    return (stream, raws)


cdef object encode_raw(object view, encoded_t *e):
    """Connection.send_bytes: the payload is a contiguous byte view's bytes, as they are."""
    e.kind, e.nbuffers, e.length = SHM_RECORD_RAW, 0, len(view)
    e.data = buffer_address(view) if e.length else NULL
    return view


cdef const char *buffer_address(object contiguous) except NULL:
    """The start of a C-contiguous buffer (the caller keeps the exporter alive)."""
    cdef Py_buffer view
    PyObject_GetBuffer(contiguous, &view, PyBUF_SIMPLE)
    cdef const char *address = <const char *>view.buf
    PyBuffer_Release(&view)
    return address


cdef uint64_t layout_size(uint64_t stream_length, list raws) except 0:
    cdef uint64_t end = layout_data_start(len(raws)) + stream_length
    for raw in raws:
        end = align_up(end, SHM_BUFFER_ALIGN) + len(raw)
    return end


# A layout is written by walking it once: the walk fills the descriptor and hands each piece of the
# body (the stream, then each buffer at its aligned position) to a sink. The sink copies it into a
# mapping (copy_piece: inline records, warm spill ranges) or lists it for pwritev (add_piece: fresh
# spill ranges, written by the kernel straight from the message's own buffers). One walk, so the two
# ways of writing cannot disagree about where a byte goes.
ctypedef int (*layout_sink_t)(void *target, uint64_t position, const char *source,
                              uint64_t length) except -1


ctypedef struct piece_list_t:
    iovec *pieces          # descriptor, stream, then (padding, buffer) pairs
    Py_ssize_t count
    uint64_t end           # layout bytes listed so far


# What the alignment gaps of a layout written with pwritev hold (never read, but written: a gap is
# part of the contiguous range one pwritev call fills).
cdef bytes LAYOUT_PADDING = bytes(SHM_BUFFER_ALIGN)


cdef int walk_layout(shm_buffers_t *descriptor, uint32_t body_kind, const char *stream,
                     uint64_t stream_length, list raws, layout_sink_t sink, void *target) except -1:
    """Fill the descriptor of a layout (see the top of this file) and give sink every piece of its
    body with its position from the start of the layout."""
    cdef Py_ssize_t nbuffers = len(raws) if raws is not None else 0
    cdef uint64_t position = layout_data_start(nbuffers)
    cdef uint64_t length
    descriptor.nbuffers = <uint32_t>nbuffers
    descriptor.body_kind = body_kind
    descriptor.stream_length = stream_length
    sink(target, position, stream, stream_length)
    position += stream_length
    for i in range(nbuffers):
        raw = raws[i]
        length = len(raw)
        position = align_up(position, SHM_BUFFER_ALIGN)
        descriptor.buffer_length[i] = length
        if length:
            sink(target, position, buffer_address(raw), length)
        position += length
    return 0


cdef int copy_piece(void *destination, uint64_t position, const char *source,
                    uint64_t length) except -1:
    copy_unlocked(<char *>destination + position, source, length)
    return 0


cdef int add_piece(void *target, uint64_t position, const char *source, uint64_t length) except -1:
    cdef piece_list_t *pieces = <piece_list_t *>target
    if position > pieces.end:
        pieces.pieces[pieces.count].iov_base = PyBytes_AS_STRING(LAYOUT_PADDING)
        pieces.pieces[pieces.count].iov_len = position - pieces.end
        pieces.count += 1
    pieces.pieces[pieces.count].iov_base = <void *>source
    pieces.pieces[pieces.count].iov_len = length
    pieces.count += 1
    pieces.end = position + length
    return 0


cdef int write_layout(char *destination, uint32_t body_kind, const char *stream,
                      uint64_t stream_length, list raws) except -1:
    """Lay a message out at destination (see the top of this file). Large copies drop the GIL."""
    return walk_layout(<shm_buffers_t *>destination, body_kind, stream, stream_length, raws,
                       copy_piece, destination)


cdef int write_encoded_layout(char *destination, encoded_t *e, object owner) except -1:
    """Write a BUFFERS payload, or any other payload as a layout body (spill ranges)."""
    if e.kind == SHM_RECORD_BUFFERS:
        stream, raws = owner
        return write_layout(destination, SHM_RECORD_BUFFERS, PyBytes_AS_STRING(stream),
                            len(<bytes>stream), raws)
    return write_layout(destination, e.kind, e.data, e.length, None)


cdef object encoded_layout_pieces(encoded_t *e, object owner, piece_list_t *pieces):
    """The pieces of e's layout (what write_encoded_layout would copy) as iovecs for pwritev, in
    order and gapless: the descriptor, the stream, then each buffer with its alignment padding.
    They point into the message's own buffers (owner) and into the returned object, which the
    caller keeps alive while it uses them: nothing is copied here."""
    cdef Py_ssize_t nbuffers = 0
    cdef const char *stream
    cdef uint64_t stream_length
    raws = None
    if e.kind == SHM_RECORD_BUFFERS:
        stream_object, raws = owner
        nbuffers = len(raws)
        stream, stream_length = PyBytes_AS_STRING(stream_object), len(<bytes>stream_object)
    else:
        stream, stream_length = e.data, e.length
    cdef uint64_t data_start = layout_data_start(nbuffers)
    descriptor = bytearray(data_start)                                # zeroed, padding included
    listing = bytearray((2 + 2 * nbuffers) * sizeof(iovec))
    pieces.pieces = <iovec *>PyByteArray_AS_STRING(listing)
    pieces.pieces[0].iov_base = PyByteArray_AS_STRING(descriptor)
    pieces.pieces[0].iov_len = data_start
    pieces.count, pieces.end = 1, data_start
    walk_layout(<shm_buffers_t *>PyByteArray_AS_STRING(descriptor), e.kind, stream, stream_length,
                raws, add_piece, pieces)
    return (descriptor, listing)


cdef inline void copy_unlocked(char *destination, const char *source, uint64_t length) noexcept:
    # Below ~64 KiB the GIL round trip costs more than the copy.
    if length < 65536:
        memcpy(destination, source, length)
    else:
        with nogil:
            memcpy(destination, source, length)


cdef uint64_t encoded_layout_size(encoded_t *e) noexcept:
    """A payload's size once laid out as a layout body (BUFFERS payloads already are one)."""
    if e.kind == SHM_RECORD_BUFFERS:
        return e.length
    return layout_data_start(0) + e.length


cdef object decode_scalar(uint32_t kind, const char *payload, uint64_t length):
    """The objects whose payload is the value itself; None for the other kinds."""
    cdef long long as_int
    cdef double as_float
    if kind == SHM_RECORD_INT:
        memcpy(&as_int, payload, 8)
        return PyLong_FromLongLong(as_int)
    if kind == SHM_RECORD_BYTES or kind == SHM_RECORD_RAW or kind == SHM_RECORD_PICKLE:
        return PyBytes_FromStringAndSize(<char *>payload, length)
    if kind == SHM_RECORD_STR:
        return PyUnicode_DecodeUTF8(<char *>payload, length, NULL)
    if kind == SHM_RECORD_FLOAT:
        memcpy(&as_float, payload, 8)
        return PyFloat_FromDouble(as_float)
    return None


cdef object decode_layout(object exporter, const char *base, uint64_t length, bint as_bytes):
    """Rebuild a message laid out at base (length bytes, exported by exporter's buffer).

    Out-of-band buffers become views of exporter, so a numpy array comes back writable and without
    a copy; they keep exporter (and so the shared memory) alive. as_bytes asks for the message's
    bytes instead of its object (recv_bytes)."""
    cdef const shm_buffers_t *layout = <const shm_buffers_t *>base
    if length < sizeof(shm_buffers_t):
        raise RuntimeError("corrupt message in a shmproc ring (layout too short)")
    cdef uint64_t nbuffers = layout.nbuffers
    cdef uint64_t position = layout_data_start(nbuffers)
    cdef uint64_t stream_length = layout.stream_length
    if position > length or stream_length > length - position:
        raise RuntimeError("corrupt message in a shmproc ring (stream outside its record)")
    whole = memoryview(exporter)
    stream = whole[position:position + stream_length]
    position += stream_length
    cdef uint32_t body_kind = layout.body_kind
    if body_kind == SHM_RECORD_RAW:
        return bytes(stream) if as_bytes else _loads(stream)
    if body_kind == SHM_RECORD_BYTES or body_kind == SHM_RECORD_STR:
        obj = bytes(stream) if body_kind == SHM_RECORD_BYTES else str(stream, "utf-8")
        return pickled_bytes(obj) if as_bytes else obj
    if body_kind != SHM_RECORD_PICKLE and body_kind != SHM_RECORD_BUFFERS:
        raise RuntimeError("corrupt message in a shmproc ring (unknown body kind)")
    if as_bytes and nbuffers == 0:
        return bytes(stream)
    buffers = []
    cdef uint64_t buffer_length
    for i in range(nbuffers):
        buffer_length = layout.buffer_length[i]
        position = align_up(position, SHM_BUFFER_ALIGN)
        if position > length or buffer_length > length - position:
            raise RuntimeError("corrupt message in a shmproc ring (buffer outside its record)")
        buffers.append(whole[position:position + buffer_length])
        position += buffer_length
    obj = _loads(stream, buffers=buffers)
    return pickled_bytes(obj) if as_bytes else obj


cdef object pickled_bytes(object obj):
    """recv_bytes of a message sent with send(): the pickle, as multiprocessing gives it."""
    return bytes(_mp_reduction.ForkingPickler.dumps(obj))
