# notify's interface: a ring's notify pipe, as a ring end holds it.

ctypedef struct notify_t:
    int read_fd                 # this end's read end of the ring's notify pipe, or -1
    int write_fd                # its write end, or -1
    bint eof_detection          # a Connection's reader: every writer gone means EOF
    bint reader_detection       # a Connection's writer: every reader gone means BrokenPipeError

cdef void notify_init(notify_t *notify, int read_fd, int write_fd, bint reader, bint writer) noexcept
cdef void notify_close(notify_t *notify) noexcept
cdef int notify_fileno(shm_ring_t *ring, notify_t *notify) except -1
cdef void notify_signal(shm_ring_t *ring, notify_t *notify) noexcept
cdef void notify_quiet_if_drained_locked(shm_ring_t *ring, notify_t *notify, uint64_t head) noexcept
cdef bint notify_writers_gone(notify_t *notify) noexcept
cdef int check_readers_present(void *notify_end) except -1
