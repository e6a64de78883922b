# segment's interface: one mapping of a shared-memory segment in this process.

cdef class Segment:
    cdef readonly bytes id
    cdef readonly size_t size        # bytes mapped, header included
    cdef char *base
    cdef int fd
    cdef object __weakref__
    cdef int _map(self) except -1
    cdef int allocate_range(self, uint64_t offset, uint64_t length) except -1
    cdef void release_range(self, uint64_t offset, uint64_t length) noexcept nogil
