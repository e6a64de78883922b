# ring's interface: the byte protocol of one ring. Methods ending in _locked run under a side's lock.

@cython.final
cdef class Ring:
    cdef Segment segment
    cdef SpillFile spill
    cdef shm_ring_t *ring
    cdef char *data
    cdef uint64_t capacity            # of the data area (address space; see ring.h)
    cdef uint64_t mask
    cdef uint64_t window              # where writers wrap when readers have made room
    cdef uint64_t wrap_limit          # a record ending past this wraps (or grows the ring)
    cdef bint growable                # window < capacity: writers may go past the window
    cdef uint64_t leap_room           # bytes a writer leaves free before the readers (growable: 8)
    cdef uint64_t spill_threshold     # records with more payload than this go to the spill file
    cdef uint64_t cached_head         # producer's last view of head (a lower bound), under its lock
    cdef uint64_t cached_gets
    cdef uint64_t cached_tail         # consumer's last view of tail (a lower bound), under its lock
    cdef uint64_t local_head          # consumer's head and gets while it holds the consumer lock
    cdef uint64_t local_gets
    cdef task_holder_t tasks          # this process's JoinableQueue task holder (tasks.pyx)
    cdef notify_t notify              # this object's notify descriptors (notify.pyx)
    cdef int ring_index
    cdef int role
    cdef bint closed
    cdef int bind(self, Segment segment, SpillFile spill, int index, int role, int read_fd,
                  int write_fd, bint eof_detection, bint is_socket) except -1
    cdef void close(self) noexcept
    cdef int send_encoded(self, encoded_t *item, object owner, bint block, int64_t deadline) except -1
    cdef inline bint must_spill(self, encoded_t *item) noexcept
    cdef Py_ssize_t send_batch(self, encoded_t *items, Py_ssize_t count, list owners, bint block,
                               int64_t deadline) except -1
    cdef Py_ssize_t write_locked(self, encoded_t *items, Py_ssize_t count, list owners,
                                 Py_ssize_t owner_base, uint32_t *observed_head) except -1
    cdef inline uint64_t placement(self, uint64_t tail, uint64_t puts, uint64_t need,
                                   bint fresh) noexcept
    cdef uint64_t placement_elsewhere(self, uint64_t tail, uint64_t puts, uint64_t need,
                                      bint fresh) noexcept
    cdef inline uint64_t leap_target(self, uint64_t tail, uint64_t need) noexcept
    cdef inline void write_skip_locked(self, uint64_t tail, uint64_t distance) noexcept
    cdef inline int reserve_locked(self, uint64_t end) except -1
    cdef void trim_locked(self, uint64_t position, uint64_t need, bint empty) noexcept
    cdef inline bint can_inline(self, encoded_t *item) noexcept
    cdef inline bint has_room(self, uint64_t start, uint64_t need, uint64_t new_puts) noexcept
    cdef bint past_lagging_reader(self, uint64_t start) noexcept
    cdef inline void after_publish(self) noexcept
    cdef inline void signal_if_enabled(self) noexcept
    cdef int spill_out(self, encoded_t *item, object owner, bint block, int64_t deadline) except -1
    cdef object receive(self, bint block, int64_t deadline, bint as_bytes)
    cdef list receive_many(self, Py_ssize_t limit, bint block, int64_t deadline)
    cdef bint poll(self, bint block, int64_t deadline) except -1
    cdef int wait_for_record(self, bint block, int64_t deadline) except -1
    cdef bint has_record(self, uint32_t *observed_tail) noexcept
    cdef inline void begin_take(self) noexcept
    cdef inline void end_take(self) noexcept
    cdef inline void drained_locked(self) noexcept
    cdef object take_one(self, uint32_t *kind, shm_spill_ref_t *ref)
    cdef list take_many(self, Py_ssize_t limit)
    cdef shm_record_header_t *next_record_locked(self) noexcept
    cdef void rewind_if_drained_locked(self) noexcept
    cdef object take_record_locked(self, shm_record_header_t *header, uint32_t *kind,
                                   shm_spill_ref_t *ref)
    cdef object finish(self, uint32_t kind, object raw, shm_spill_ref_t *ref, bint as_bytes)
    cdef uint64_t qsize(self) noexcept
