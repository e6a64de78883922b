# notify: a ring's notify pipe, for select() and for a Connection's EOF.
#
# Each ring has a notify pipe: it is kept readable while the ring holds a message, but only once
# someone has asked for fileno() (no system call per message otherwise). A Connection's reader also
# uses it to learn that every writer is gone: the pipe's write ends are held by the writing
# Connections only, so POLLHUP on the read end means EOF, however the peer went away. A writer
# blocked on a full ring learns the same way (POLLERR on its write end) that every reader is gone.
#
# A ring end's notify_t (its pipe ends and which checks it makes) is declared in notify.pxd.

cdef void notify_init(notify_t *notify, int read_fd, int write_fd, bint reader, bint writer) noexcept:
    notify.read_fd, notify.write_fd = read_fd, write_fd
    notify.eof_detection = reader
    notify.reader_detection = writer


cdef void notify_close(notify_t *notify) noexcept:
    if notify.read_fd >= 0:
        close(notify.read_fd)
        notify.read_fd = -1
    if notify.write_fd >= 0:
        close(notify.write_fd)
        notify.write_fd = -1


cdef int notify_fileno(shm_ring_t *ring, notify_t *notify) except -1:
    """A descriptor that select() reports readable while a message (or EOF) is waiting; from now
    on every publish into an empty ring signals it."""
    if notify.read_fd < 0 and notify.write_fd < 0:
        raise OSError("handle is closed")
    if notify.read_fd < 0:
        return notify.write_fd
    if not shm_load_u32(&ring.notify_enabled):
        shm_store_u32(&ring.notify_enabled, 1)
        shm_fence_seq_cst()
        if shm_load_u64(&ring.tail) != shm_load_u64(&ring.head):
            notify_signal(ring, notify)
    return notify.read_fd


cdef void notify_signal(shm_ring_t *ring, notify_t *notify) noexcept:
    """Make the notify pipe readable, unless it already is (one byte at most)."""
    cdef uint32_t expected = 0
    if not shm_cas_u32(&ring.notify_signaled, &expected, 1):
        return
    if notify.write_fd >= 0:
        write(notify.write_fd, b"!", 1)
    elif notify.read_fd >= 0:
        # A reader re-arming the pipe: open a write end just for this byte.
        try:
            fd = reopen_own_fd(notify.read_fd, _os.O_WRONLY | _os.O_NONBLOCK)
            _os.write(fd, b"!")
            _os.close(fd)
        except BaseException:
            pass


cdef void notify_quiet_if_drained_locked(shm_ring_t *ring, notify_t *notify, uint64_t head) noexcept:
    """Under the consumer lock, head being where this reader leaves it: if the ring is empty, the
    notify pipe must stop being readable. Order matters: drain, then clear the flag, then look again
    (a writer that published in between saw the flag set and wrote nothing)."""
    cdef char sink[64]
    if notify.read_fd < 0 or not shm_load_relaxed_u32(&ring.notify_enabled):
        return
    if not shm_load_u32(&ring.notify_signaled):
        return
    if shm_load_u64(&ring.tail) != head:
        return
    while read(notify.read_fd, sink, sizeof(sink)) == sizeof(sink):
        pass
    shm_store_u32(&ring.notify_signaled, 0)
    shm_fence_seq_cst()
    if shm_load_u64(&ring.tail) != head:
        notify_signal(ring, notify)


cdef bint notify_writers_gone(notify_t *notify) noexcept:
    """A Connection's reader: has every write end of the pipe, in every process, been closed?"""
    cdef pollfd entry
    if notify.read_fd < 0:
        return False
    entry.fd, entry.events, entry.revents = notify.read_fd, POLLIN, 0
    return poll(&entry, 1, 0) > 0 and (entry.revents & POLLHUP) != 0


cdef int check_readers_present(void *notify_end) except -1:
    """A Connection's writer blocked on a full ring (a peer check for after_wait): if every reader
    is gone, the data would never be read (multiprocessing raises BrokenPipeError too)."""
    cdef notify_t *notify = <notify_t *>notify_end
    cdef pollfd entry
    if not notify.reader_detection or notify.write_fd < 0:
        return 0
    entry.fd, entry.events, entry.revents = notify.write_fd, 0, 0
    if poll(&entry, 1, 0) > 0 and entry.revents & POLLERR:
        raise BrokenPipeError(_errno.EPIPE, "the reading end of the pipe is closed")
    return 0
