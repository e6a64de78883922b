# notify's interface: a ring's notify descriptor (a pipe, or a duplex Pipe's socket), as a ring end
# holds it.

ctypedef struct notify_t:
    int read_fd                 # this end's reader descriptor of the ring's notify channel, or -1
    int write_fd                # its writer descriptor, or -1
    bint eof_detection          # a Connection's reader: every writer gone means EOF
    bint reader_detection       # a Connection's writer: every reader gone means BrokenPipeError
    bint is_socket              # a duplex Pipe's socketpair end, not a pipe

cdef void notify_init(notify_t *notify, int read_fd, int write_fd, bint reader, bint writer,
                      bint is_socket) noexcept
cdef void notify_close(notify_t *notify) noexcept
cdef int notify_seed(shm_ring_t *ring, int write_fd, bint is_socket) except -1
cdef int notify_fileno(shm_ring_t *ring, notify_t *notify) except -1
cdef int notify_before_foreign_bytes(shm_ring_t *ring) except -1
cdef void notify_signal(shm_ring_t *ring, notify_t *notify) noexcept
cdef void notify_quiet_if_drained_locked(shm_ring_t *ring, notify_t *notify, uint64_t head) noexcept
cdef bint notify_writers_gone(notify_t *notify) noexcept
cdef int check_readers_present(void *notify_end) except -1
