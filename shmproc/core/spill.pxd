# spill's interface: a channel's side file for messages too large for its ring.

cdef class SpillMapping:
    cdef char *address
    cdef uint64_t size
    cdef uint32_t generation
    cdef bint populated            # its page tables are filled (a writer's), not faulted lazily

cdef class SpillLease:
    cdef SpillFile spill
    cdef SpillMapping mapping
    cdef uint32_t slot
    cdef uint32_t holder
    cdef uint64_t length

cdef class SpillFile:
    cdef int fd
    cdef readonly bytes id
    cdef Segment segment           # the channel segment holding the slot table
    cdef shm_spill_table_t *table
    cdef dict mappings             # slot -> SpillMapping
    cdef object __weakref__
    @staticmethod
    cdef SpillFile create(Segment segment, shm_spill_table_t *table)
    @staticmethod
    cdef SpillFile attach(object handle, Segment segment, shm_spill_table_t *table)
    cdef SpillMapping mapping(self, uint32_t slot, bint populate)
    cdef int write_message(self, encoded_t *item, object owner, bint block,
                           int64_t deadline) except -2
    cdef int fill_fresh_range(self, int slot, encoded_t *item, object owner,
                              uint64_t length) except -1
    cdef int acquire_slot(self, uint64_t size, bint block, int64_t deadline,
                          bint *fresh) except -2
    cdef int claim_locked(self, uint64_t size, bint *fresh) except -2
    cdef int recover_dead_holder_locked(self) except -2
    cdef int new_range_locked(self, int slot, uint64_t size) except -1
    cdef int punch_cached_ranges(self) except -1
    cdef int abandon_slot(self, int slot) except -1
    cdef int punch_locked(self, int slot) except -1
    cdef int trim_cache_locked(self) except -1
    cdef inline void queue_slot(self, uint32_t slot) noexcept
    cdef inline void hold_slot(self, uint32_t slot) noexcept
    cdef void release_slot(self, uint32_t slot) noexcept
    cdef bint under_pressure(self) noexcept
    cdef object receive(self, const shm_spill_ref_t *ref, bint as_bytes)
