# channel: creating a channel (one segment holding one or two rings, with its spill file), and moving
# a ring of it to another process (a handle out, a Ring back in).
#
# A queue's channel has one growable ring that every user both writes and reads; a Pipe's has one
# ring per direction, each used by a reading end and a writing end. Each Ring object also holds the
# descriptors of its ring's notify channel that its role needs (notify.pyx): a pipe, or for a
# duplex Pipe one end of a socketpair.

QUEUE_CAPACITY = 4 << 20
PIPE_CAPACITY = 1 << 20
cdef uint64_t MIN_CAPACITY = 4096
cdef uint64_t MAX_CAPACITY = 1 << 30
# A queue's ring is growable: this much address space, of which only the window's pages are
# allocated while readers keep up (see "Growth" in docs/internals/ring.md). multiprocessing's Queue
# buffers without bound in its feeder; ours holds up to this many bytes of small records (large
# messages live in the spill file), or until /dev/shm is full (OSError), before put() blocks. Mapped
# address space costs nothing until touched; 16 GiB lets a process map thousands of queues.
cdef uint64_t GROWABLE_CAPACITY = 1 << 34


cdef uint64_t checked_capacity(object capacity) except 0:
    cdef uint64_t value = capacity
    if value < MIN_CAPACITY or value > MAX_CAPACITY or value & (value - 1):
        raise ValueError(f"ring capacity must be a power of two between {MIN_CAPACITY} and "
                         f"{MAX_CAPACITY} bytes, not {capacity}")
    return value


cdef tuple create_channel(int nrings, object capacity, object maxsize, bint joinable,
                          bint growable):
    """A new channel segment with nrings empty rings, and its spill file. A growable ring (a
    queue's: one per channel) allocates only its window's pages now."""
    cdef uint64_t window = checked_capacity(capacity)
    cdef uint64_t ring_capacity = GROWABLE_CAPACITY if growable else window
    assert nrings == 1 or not growable
    if maxsize is None or maxsize <= 0:
        maxsize = 0
    cdef uint64_t header_end = align_up(SHM_SEGMENT_HEADER + sizeof(shm_channel_t), 4096)
    cdef uint64_t payload = header_end - SHM_SEGMENT_HEADER + nrings * ring_capacity
    cdef Segment segment = Segment.create(
        payload, header_end - SHM_SEGMENT_HEADER + window if growable else None)
    cdef shm_channel_t *channel = <shm_channel_t *>(segment.base + SHM_SEGMENT_HEADER)
    cdef SpillFile spill = SpillFile.create(segment, &channel.spill)
    memcpy(channel.spill_id, <char *>spill.id, 16)
    channel.nrings = nrings
    for i in range(nrings):
        channel.ring[i].capacity = ring_capacity
        channel.ring[i].window = window
        channel.ring[i].reserved = window
        channel.ring[i].data_offset = header_end + i * ring_capacity
        channel.ring[i].maxsize = maxsize
        channel.ring[i].joinable = joinable
    shm_store_u64(&channel.magic, SHM_CHANNEL_MAGIC)
    return segment, spill


cdef Ring bound_ring(Segment segment, SpillFile spill, int index, int role, int read_fd,
                     int write_fd, bint eof_detection, bint is_socket):
    cdef Ring ring = Ring.__new__(Ring)
    ring.bind(segment, spill, index, role, read_fd, write_fd, eof_detection, is_socket)
    return ring


cdef Ring new_queue_ring(object maxsize, bint joinable, object capacity):
    """A new queue's only ring, read and written by every user of the queue."""
    segment, spill = create_channel(1, capacity, maxsize, joinable, True)
    read_fd, write_fd = _os.pipe2(_os.O_NONBLOCK | _os.O_CLOEXEC)
    ring = bound_ring(segment, spill, 0, ROLE_BOTH, read_fd, write_fd, False, False)
    notify_seed(ring.ring, write_fd, False)
    return ring


cdef list new_pipe_rings(bint duplex, object capacity):
    """The rings of a new Pipe: [(reader, writer)] per direction. Each reader holds only its
    ring's reading descriptor and each writer only the writing one, so that a reader sees EOF when
    every writer, in every process, is gone.

    A one-way Pipe's ring has a pipe, as multiprocessing's one-way Pipe is a pipe. A duplex Pipe's
    two rings share one socketpair (s0, s1), as multiprocessing's duplex Pipe is one: ring 0 is
    read through s0 and written through a duplicate of s1, ring 1 the other way round, so each
    Connection's fileno() is its end of the socketpair, which the standard library's send_handle
    and recv_handle pass descriptors over. The sockets stay in blocking mode: O_NONBLOCK would be
    shared by every duplicate, and the standard library's recvmsg on a socket made from one would
    fail with BlockingIOError instead of waiting."""
    cdef int nrings = 2 if duplex else 1
    segment, spill = create_channel(nrings, capacity, 0, False, False)
    if duplex:
        first, second = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sockets = [first.detach(), second.detach()]
        ends = [(sockets[0], _os.dup(sockets[1])), (sockets[1], _os.dup(sockets[0]))]
    else:
        ends = [_os.pipe2(_os.O_NONBLOCK | _os.O_CLOEXEC)]
    pairs = []
    for i in range(nrings):
        read_fd, write_fd = ends[i]
        pairs.append((bound_ring(segment, spill, i, ROLE_READ, read_fd, -1, True, duplex),
                      bound_ring(segment, spill, i, ROLE_WRITE, -1, write_fd, False, duplex)))
        notify_seed((<Ring>pairs[i][0]).ring, write_fd, duplex)
    return pairs


cdef tuple ring_handle(Ring ring):
    """What another process needs to use this ring in the same role: its channel's segment and
    spill file, and the notify descriptors this object holds (passed as handles.pyx says)."""
    cdef bint spawning = is_spawning()
    return (ring.segment.id, ring.segment.size, fd_reference(ring.segment.fd, spawning),
            ring.spill.id, fd_reference(ring.spill.fd, spawning),
            ring.ring_index, ring.role, ring.notify.eof_detection, ring.notify.is_socket,
            fd_reference(ring.notify.read_fd, spawning), fd_reference(ring.notify.write_fd, spawning),
            inode_of(ring.notify.read_fd), inode_of(ring.notify.write_fd))


cdef object inode_of(int fd):
    # A pipe's or socket's inode names it, so that a receiver can tell it from whatever reused its
    # descriptor number in the sender (notify descriptors carry no signature to read).
    return _os.fstat(fd).st_ino if fd >= 0 else 0


cdef int deposit_handles(Ring ring, uint64_t pickled_before) except -1:
    """The messages about to be put into ring hold handles: hand their descriptors to the keeper,
    tied to the ring (its notify write end tells the keeper when no process can read it any more),
    before any of them is published, so that they outlive this process (core/handles.pyx)."""
    name = ring.segment.id + (<uint32_t>ring.ring_index).to_bytes(4, "little") + bytes(4)
    # A queue's write end may be held as long as the queue lives (queues have no EOF); a Pipe's
    # only while something sent through it waits, or its reader would never see EOF.
    return deposit_pending(pickled_before, name, ring.notify.write_fd, ring.role == ROLE_BOTH)


cdef Ring attach_ring(tuple handle):
    """The Ring a handle names, in this process."""
    (segment_id, size, segment_fd, spill_id, spill_fd, index, role, eof, is_socket, read_fd, write_fd,
     read_inode, write_inode) = handle
    segment = Segment.attach(segment_id, size, segment_fd)
    cdef shm_channel_t *channel = <shm_channel_t *>((<Segment>segment).base + SHM_SEGMENT_HEADER)
    if channel.magic != SHM_CHANNEL_MAGIC or memcmp(channel.spill_id, <char *>spill_id, 16):
        raise ValueError("not a shmproc channel")
    spill = SpillFile.attach((spill_id, spill_fd), segment, &channel.spill)
    cdef Ring ring = bound_ring(segment, spill, index, role, -1, -1, eof, is_socket)
    ring.notify.read_fd = adopt_notify_end(read_fd, _os.O_RDONLY, is_socket, read_inode)
    ring.notify.write_fd = adopt_notify_end(write_fd, _os.O_WRONLY, is_socket, write_inode)
    return ring
