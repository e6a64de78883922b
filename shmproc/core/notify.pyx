# notify: a ring's notify descriptor, for select() and for a Connection's EOF.
#
# Each ring has a notify channel: a pipe (a queue's ring, a one-way Pipe's ring), or, for the two
# rings of a duplex Pipe, the two ends of one AF_UNIX socketpair, so that a duplex Connection's
# fileno() is a socket that multiprocessing.reduction.send_handle/recv_handle can pass descriptors
# over, as with multiprocessing's own duplex Pipe. Ring 0 of a duplex Pipe is read through socket
# s0 and its writers send into a duplicate of s1; ring 1 the other way round.
#
# The reader's descriptor is kept readable while the ring holds a message, but only once someone
# has asked for fileno() (no system call per message otherwise). A Connection's reader also learns
# from it that every writer is gone: the writers' descriptors are held by the writing Connections
# only, so POLLHUP on the reader's descriptor means EOF, however the peer went away. A writer
# blocked on a full ring learns the same way (POLLERR on a pipe's write end, POLLHUP on a socket)
# that every reader is gone.
#
# The protocol needs no write by the reader (a socket's reader cannot write into its own receive
# queue, and must not hold the peer's socket, or it would never see EOF); docs/internals/ring.md,
# "The notify descriptor", gives its invariants. In short: notify_signaled == 1 means one notify
# byte is in the reader's descriptor or about to be sent by whoever set the flag. Writers set it
# (0 -> 1) and send the byte; only a reader, under the consumer lock, clears it, and then consumes
# only bytes it can prove nobody else's flag stands for. A ring is created with the flag set and its
# byte already sent (the seed), so that enabling with messages waiting is readable at once. Bytes
# other than notify bytes (a passed descriptor) may share a duplex Pipe's socket: a reader never
# consumes those, takes away notify bytes in front of them, and writers then send a byte behind.
#
# A ring end's notify_t (its descriptors and which checks it makes) is declared in notify.pxd.

# The notify byte. Never the first byte of what multiprocessing.reduction.sendfds sends (the count
# of descriptors modulo 256, at most SCM_MAX_FD = 253), so a reader can tell them apart and never
# eats a passed descriptor's message (that would close the descriptor in flight).
cdef unsigned char NOTIFY_BYTE = 0xFF
# How long a reader waits for the byte of a flag it cleared whose writer has not sent it yet (a
# writer between its compare-and-swap and its send: normally a microsecond). Past this, the byte
# is left to a later settle that counts (a writer killed in between never sends it).
cdef int LATE_BYTE_WAIT_MS = 50
# How many such slices fileno() waits at most for a live writer holding the producer lock (a
# writer descheduled inside it on a busy machine; see wait_for_publisher).
cdef int PUBLISHER_WAIT_SLICES = 20

cdef enum FrontState:
    NOTIFY_NOTHING = 0              # the descriptor holds nothing
    NOTIFY_BYTES_ONLY = 1           # only notify bytes
    NOTIFY_BYTES_THEN_OTHER = 2     # (maybe some notify bytes, then) other bytes, or EOF


cdef void notify_init(notify_t *notify, int read_fd, int write_fd, bint reader, bint writer,
                      bint is_socket) noexcept:
    notify.read_fd, notify.write_fd = read_fd, write_fd
    notify.eof_detection = reader
    notify.reader_detection = writer
    notify.is_socket = is_socket


cdef void notify_close(notify_t *notify) noexcept:
    if notify.read_fd >= 0:
        close(notify.read_fd)
        notify.read_fd = -1
    if notify.write_fd >= 0:
        close(notify.write_fd)
        notify.write_fd = -1


cdef int notify_seed(shm_ring_t *ring, int write_fd, bint is_socket) except -1:
    """A new ring, before any other process sees it: set the flag and send its byte, so that the
    invariant holds while nobody has asked for fileno() (writers then never signal)."""
    send_notify_byte(write_fd, is_socket)
    shm_store_u32(&ring.notify_signaled, 1)
    return 0


cdef int notify_fileno(shm_ring_t *ring, notify_t *notify) except -1:
    """A descriptor that select() reports readable while a message (or EOF) is waiting; from now
    on every publish into an empty ring signals it. wait() calls it each time it waits, and the
    standard library's recv_handle right before it reads, so it is also where the descriptor is
    tidied: an empty ring stops looking readable (the seed, or a byte sent just after a reader
    emptied the ring), and notify bytes in front of other bytes (a passed descriptor) go."""
    if notify.read_fd < 0 and notify.write_fd < 0:
        raise OSError("handle is closed")
    if notify.read_fd < 0:
        return notify.write_fd
    cdef uint32_t mode = shm_load_u32(&ring.notify_mode)
    if not mode & SHM_NOTIFY_ENABLED:
        mode = shm_fetch_or_u32(&ring.notify_mode, SHM_NOTIFY_ENABLED) | SHM_NOTIFY_ENABLED
        shm_fence_seq_cst()
    if notify.is_socket and shm_load_u64(&ring.tail) == shm_load_u64(&ring.head):
        wait_for_publisher(ring)
    # Only notify bytes, and an empty ring without its flag: nothing to tidy. If another reader
    # holds the lock, it tidies as it empties the ring.
    if (mode & SHM_NOTIFY_MIXED or (shm_load_u32(&ring.notify_signaled)
                                    and shm_load_u64(&ring.tail) == shm_load_u64(&ring.head))):
        if lock_try(&ring.consumer_lock, shm_current_pid()):
            tidy_locked(ring, notify, mode & SHM_NOTIFY_MIXED)
            lock_release(&ring.consumer_lock)
    return notify.read_fd


cdef void wait_for_publisher(shm_ring_t *ring) noexcept:
    """A duplex Pipe's writer sends its notify byte before it lets go of the producer lock: with
    the ring empty, wait until the writer now holding it (if any) is done, so that a byte for a
    message this reader has already taken is in the socket before tidy_locked looks (else it could
    come later, in front of a descriptor that the caller is about to receive). With a message
    waiting, a byte on its way is that message's (the message taken last was signalled for under
    an earlier hold of the lock). Bounded (a second), and over at once if the holder has died: a
    writer killed holding the lock keeps it until the next writer takes it over."""
    cdef uint32_t state = shm_load_u32(&ring.producer_lock.state)
    cdef uint32_t holder = state & ~SHM_LOCK_SLEEPERS
    cdef int slices = PUBLISHER_WAIT_SLICES
    if holder == 0:
        return
    with nogil:
        # The holder is normally inside one system call: spin (yielding now and then), as a ring's
        # reader does for a message, rather than sleep; past each slice, stop if it has died.
        while (state & ~SHM_LOCK_SLEEPERS) == holder and slices > 0:
            if not spin_for(&ring.producer_lock.state, state, LATE_BYTE_WAIT_MS * 1000000):
                slices -= 1
                if not shm_pid_alive(holder):
                    break
            state = shm_load_u32(&ring.producer_lock.state)


cdef int notify_before_foreign_bytes(shm_ring_t *ring) except -1:
    """A duplex Connection's descriptor was asked for other than by shmproc's wait(): its caller
    may put other bytes into the stream of this ring (the one the Connection writes), as the
    standard library's send_handle does. The reader takes away notify bytes in front of those, so
    the next publish sends its own byte behind them, even if the flag is already set, and from now
    on the reader peeks before it consumes."""
    if (shm_load_relaxed_u32(&ring.notify_mode) & (SHM_NOTIFY_AFTER_FOREIGN | SHM_NOTIFY_MIXED)
            != (SHM_NOTIFY_AFTER_FOREIGN | SHM_NOTIFY_MIXED)):
        shm_fetch_or_u32(&ring.notify_mode, SHM_NOTIFY_AFTER_FOREIGN | SHM_NOTIFY_MIXED)
    return 0


cdef void tidy_locked(shm_ring_t *ring, notify_t *notify, bint mixed) noexcept:
    """Under the consumer lock, from fileno(): see notify_fileno. Notify bytes in front of other
    bytes are never needed for readiness (the other bytes keep the descriptor readable, and
    whatever is published after them sends a byte behind them), and would make recv_handle read a
    notify byte instead of the passed descriptor."""
    cdef int state
    cdef Py_ssize_t present
    cdef uint64_t head = ring.head
    if mixed:
        present = leading_notify_bytes(notify, &state)
        while present and state == NOTIFY_BYTES_THEN_OTHER:
            discard_bytes(notify, present)
            present = leading_notify_bytes(notify, &state)
    if shm_load_u64(&ring.tail) != head:
        return
    if shm_load_u32(&ring.notify_signaled):
        notify_quiet_if_drained_locked(ring, notify, head)
    elif mixed:
        consume_owed(ring, notify, 0)


cdef void notify_signal(shm_ring_t *ring, notify_t *notify) noexcept:
    """After publishing (notify_mode not 0): make the reader's descriptor readable, unless a flag
    already stands for a byte there; and send a byte anyway if other bytes may have gone into the
    stream since the last one (they are read first, and this publish must stay visible)."""
    cdef uint32_t mode = shm_load_u32(&ring.notify_mode)
    cdef uint32_t expected = 0
    cdef bint send_byte = False
    while mode & SHM_NOTIFY_AFTER_FOREIGN:
        if shm_cas_u32(&ring.notify_mode, &mode, mode & ~(<uint32_t>SHM_NOTIFY_AFTER_FOREIGN)):
            send_byte = True
            break
    if mode & SHM_NOTIFY_ENABLED and shm_cas_u32(&ring.notify_signaled, &expected, 1):
        send_byte = True
    if send_byte and notify.write_fd >= 0:
        send_notify_byte(notify.write_fd, notify.is_socket)


cdef inline void send_notify_byte(int fd, bint is_socket) noexcept:
    # Never blocks (a pipe is O_NONBLOCK; a socket stays blocking for the standard library's
    # descriptor passing, so the call says so) and never raises SIGPIPE: a reader that is gone
    # needs no byte. At most a few bytes are ever in flight, far below any buffer's size.
    if is_socket:
        send(fd, &NOTIFY_BYTE, 1, MSG_DONTWAIT | MSG_NOSIGNAL)
    else:
        write(fd, &NOTIFY_BYTE, 1)


cdef void notify_quiet_if_drained_locked(shm_ring_t *ring, notify_t *notify, uint64_t head) noexcept:
    """Under the consumer lock, head being where this reader leaves it: if the ring is empty, the
    reader's descriptor must stop being readable. Clear the flag, then look at tail again (a writer
    that published before the clear saw the flag set and sent nothing): if a message arrived, set
    the flag again, keeping its byte; else consume the cleared flag's byte."""
    cdef uint32_t expected = 1
    cdef uint32_t mode = shm_load_relaxed_u32(&ring.notify_mode)
    if notify.read_fd < 0 or not mode or shm_load_u64(&ring.tail) != head:
        return
    if not mode & SHM_NOTIFY_ENABLED:
        # Nobody asked for this descriptor, but its peer did, and may send a byte behind each of
        # its calls: consume those as they come (the flag stays set, its one byte with it).
        if mode & SHM_NOTIFY_MIXED:
            consume_owed(ring, notify, 0)
        return
    # Only readers clear the flag, under this lock; writers only set it. No flag: no byte is owed
    # (a byte sent for a flag set after this look is settled by the next reader or fileno()).
    if not shm_cas_u32(&ring.notify_signaled, &expected, 0):
        return
    shm_fence_seq_cst()
    if shm_load_u64(&ring.tail) != head:
        expected = 0
        if shm_cas_u32(&ring.notify_signaled, &expected, 1):
            return
        # A writer set it first and sends its own byte: the cleared flag's byte is surplus.
    consume_owed(ring, notify, 1)


cdef void consume_owed(shm_ring_t *ring, notify_t *notify, int owed) noexcept:
    """Under the consumer lock: consume owed notify bytes (1: a flag was just cleared; its byte may
    be late, if its writer is between setting the flag and sending, so wait briefly for it).

    While the descriptor holds notify bytes only, reading exactly the bytes owed is right whatever
    else is there: bytes are alike, and any other byte stands for a flag still set. Once it may hold
    other bytes, or more bytes than flags (SHM_NOTIFY_MIXED), the reader peeks: of the n notify
    bytes at the front, n - flag are surplus. With the flag clear, no writer can be about to send
    a byte that is already there (a writer sets the flag before it sends, and only a reader holding
    this lock clears it); with it set, one byte stays for it."""
    cdef Py_ssize_t present, extra
    cdef int state
    cdef pollfd entry
    cdef int64_t deadline = 0
    cdef int64_t now
    cdef bint mixed
    while True:
        mixed = shm_load_relaxed_u32(&ring.notify_mode) & SHM_NOTIFY_MIXED
        if mixed:
            present = leading_notify_bytes(notify, &state)
            extra = present - <Py_ssize_t>shm_load_u32(&ring.notify_signaled)
            if extra > 0:
                discard_bytes(notify, extra)
                owed -= <int>extra
            # Anything else there (the flag's own byte, a passed descriptor, EOF) keeps poll()
            # from sleeping: wait only on an empty descriptor with no flag set.
            if state != NOTIFY_NOTHING or shm_load_u32(&ring.notify_signaled):
                return
        elif owed > 0:
            state = take_bytes(notify, owed)
            if state < 0:
                return                  # EOF: every writer is gone, no byte will come
            owed -= state
        if owed <= 0:
            return
        now = shm_monotonic_ns()
        if deadline == 0:
            deadline = now + LATE_BYTE_WAIT_MS * 1000000
        elif now >= deadline:
            # The writer was killed between its flag and its byte, or is starved: if its byte
            # comes after all, it is surplus, which only a reader that counts will consume.
            shm_fetch_or_u32(&ring.notify_mode, SHM_NOTIFY_MIXED)
            return
        entry.fd, entry.events, entry.revents = notify.read_fd, POLLIN, 0
        with nogil:
            poll(&entry, 1, <int>((deadline - now) // 1000000 + 1))
        if entry.revents & (POLLHUP | POLLERR):
            return                  # every writer is gone: EOF, not a byte, is what came


cdef int take_bytes(notify_t *notify, int count) noexcept:
    """Read up to count bytes (there are only notify bytes) without waiting: how many were read,
    or -1 at EOF."""
    cdef unsigned char sink[64]
    cdef ssize_t got
    count = min(count, <int>sizeof(sink))
    if notify.is_socket:
        got = recv(notify.read_fd, sink, count, MSG_DONTWAIT)
    else:
        got = read(notify.read_fd, sink, count)
    if got == 0:
        return -1
    return <int>got if got > 0 else 0


cdef Py_ssize_t leading_notify_bytes(notify_t *notify, int *state) noexcept:
    """How many notify bytes are at the front of the reader's descriptor (up to 512), and what is
    there (a FrontState)."""
    cdef unsigned char peeked[512]
    cdef int available = 0
    cdef ssize_t got
    cdef Py_ssize_t count = 0
    if notify.is_socket:
        got = recv(notify.read_fd, peeked, sizeof(peeked), MSG_PEEK | MSG_DONTWAIT)
        while count < got and peeked[count] == NOTIFY_BYTE:
            count += 1
        # EOF (0) counts as other bytes: poll() reports it at once, and nothing more will come.
        state[0] = (NOTIFY_NOTHING if got < 0 else NOTIFY_BYTES_ONLY if count == got and count
                    else NOTIFY_BYTES_THEN_OTHER)
        return count
    # A pipe carries notify bytes only, and cannot be peeked.
    if ioctl(notify.read_fd, FIONREAD, &available) < 0:
        available = 0
    state[0] = NOTIFY_BYTES_ONLY if available > 0 else NOTIFY_NOTHING
    return available


cdef void discard_bytes(notify_t *notify, Py_ssize_t count) noexcept:
    """Consume count bytes known to be notify bytes at the front of the reader's descriptor."""
    cdef unsigned char sink[64]
    cdef ssize_t got
    while count > 0:
        if notify.is_socket:
            got = recv(notify.read_fd, sink, min(count, <Py_ssize_t>sizeof(sink)), MSG_DONTWAIT)
        else:
            got = read(notify.read_fd, sink, min(count, <Py_ssize_t>sizeof(sink)))
        if got <= 0:
            return
        count -= got


cdef bint notify_writers_gone(notify_t *notify) noexcept:
    """A Connection's reader: has every writer's descriptor, in every process, been closed?"""
    cdef pollfd entry
    if notify.read_fd < 0:
        return False
    entry.fd, entry.events, entry.revents = notify.read_fd, POLLIN, 0
    return poll(&entry, 1, 0) > 0 and (entry.revents & POLLHUP) != 0


cdef int check_readers_present(void *notify_end) except -1:
    """A Connection's writer blocked on a full ring (a peer check for after_wait): if every reader
    is gone, the data would never be read (multiprocessing raises BrokenPipeError too). A pipe's
    write end reports POLLERR then; a socket reports POLLHUP (its peer is closed), and POLLERR too
    if the peer left unread bytes."""
    cdef notify_t *notify = <notify_t *>notify_end
    cdef pollfd entry
    if not notify.reader_detection or notify.write_fd < 0:
        return 0
    entry.fd, entry.events, entry.revents = notify.write_fd, 0, 0
    if poll(&entry, 1, 0) > 0 and entry.revents & (POLLERR | POLLHUP):
        raise BrokenPipeError(_errno.EPIPE, "the reading end of the pipe is closed")
    return 0
