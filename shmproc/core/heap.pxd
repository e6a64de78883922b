# heap's interface: blocks of shared memory, and the per-process heap that carves them.

cdef class Heap

cdef class Block:
    cdef readonly Segment segment
    cdef readonly size_t offset
    cdef readonly size_t size
    cdef uint32_t creator_pid
    cdef Heap heap                 # None for a block that owns its segment
    cdef bint sent                 # its handle was pickled by reference: never reuse it
    cdef object __weakref__
    cdef inline char *pointer(self) noexcept

cdef class Heap:
    cdef uint32_t pid
    cdef list arenas
    cdef Segment current
    cdef size_t bump
    cdef dict free_blocks          # rounded size -> list of (segment, offset)
    cdef void _reset(self) noexcept
    cdef Block allocate(self, size_t size)
    cdef void release(self, Segment segment, size_t offset, size_t size) noexcept
