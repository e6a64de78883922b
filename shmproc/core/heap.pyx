# heap: blocks of shared memory for the objects shmproc creates.
#
# A lock needs 16 bytes; giving each its own segment would cost a descriptor and a page apiece. So
# small blocks are carved out of per-process arenas (1 MiB segments), each rounded up to a cache line
# so that two primitives never share one. A large block (a big Array, a shared ndarray) gets a
# segment of its own, which the kernel frees as soon as no process maps it; its pages are reserved
# up front only where a first touch could otherwise SIGBUS (segment.pyx, _touch_may_fail): a fresh
# 16 MB array whose pages are reserved costs 6-11 ms to make and as much to free, one whose pages
# come on first touch ~20 us.
#
# Lifetime follows multiprocessing.heap: a small block goes back to its arena's free list when the
# process that created it drops its last reference. Keep the object alive in the creator for as long
# as children started with it use it, as multiprocessing requires; a large block has no such rule.
# A small block whose handle was pickled by reference (into a queue or pipe) is never reused by its
# creator: the receiver may attach it after the creator dropped it (docs/internals/handles.md).
#
# After fork, the child must not carve from the parent's arenas (both would hand out the same
# offsets), so the heap notices the new pid and starts afresh; the inherited blocks stay mapped.

cdef size_t ARENA_SIZE = 1 << 20
cdef size_t SMALL_BLOCK_LIMIT = 1 << 16


cdef inline size_t round_to_cache_line(size_t n) noexcept nogil:
    return (n + SHM_CACHE_LINE - 1) & ~(SHM_CACHE_LINE - 1)


cdef class Block:
    """A run of bytes in a segment: what a shared object stores its state in. Exposes the buffer
    protocol (writable bytes), so numpy and ctypes can view it without a copy."""

    def __dealloc__(self):
        if self.heap is not None and not self.sent and self.creator_pid == shm_current_pid():
            self.heap.release(self.segment, self.offset, self.size)

    cdef inline char *pointer(self) noexcept:
        return self.segment.base + self.offset

    @property
    def address(self):
        """The block's address in this process (for numpy's __array_interface__ and tests)."""
        return <size_t>self.pointer()

    def handle(self):
        """A small picklable record naming this block: (segment handle, offset, size)."""
        if self.heap is not None and not is_spawning():
            self.sent = True
        return (self.segment.handle(), self.offset, self.size)

    @staticmethod
    def attach(handle):
        """The block a handle names, mapped into this process."""
        segment_handle, offset, size = handle
        cdef Segment seg = Segment.attach(*segment_handle)
        if offset + size > seg.size:
            raise ValueError("block handle lies outside its segment")
        return make_block(seg, offset, size, None)

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        PyBuffer_FillInfo(buffer, self, self.pointer(), <Py_ssize_t>self.size, 0, flags)

    def __releasebuffer__(self, Py_buffer *buffer):
        pass

    def __reduce__(self):
        return (_attach_block, (self.handle(),))

    def __repr__(self):
        return f"<shmproc Block offset={self.offset} size={self.size} in {self.segment!r}>"


def _attach_block(handle):
    # Module-level, so that pickle can name it (a staticmethod of an extension type it cannot).
    return Block.attach(handle)


cdef Block make_block(Segment segment, size_t offset, size_t size, Heap heap):
    cdef Block block = Block.__new__(Block)
    block.segment = segment
    block.offset = offset
    block.size = size
    block.heap = heap
    block.creator_pid = shm_current_pid()
    return block


cdef class Heap:
    """This process's arenas. Every method is a few built-in container operations under the GIL with
    no call back into Python code, so the heap needs no lock even when a Block's deallocation (from a
    garbage collection) re-enters it during an allocation."""

    def __cinit__(self):
        self._reset()

    cdef void _reset(self) noexcept:
        self.pid = shm_current_pid()
        self.arenas = []
        self.current = None
        self.bump = 0
        self.free_blocks = {}

    cdef Block allocate(self, size_t size):
        cdef size_t rounded = round_to_cache_line(size if size else 1)
        cdef Block block
        if self.pid != shm_current_pid():
            self._reset()
        if rounded > SMALL_BLOCK_LIMIT:
            segment = Segment.create(rounded, reserve_always=False)
            return make_block(segment, SHM_SEGMENT_HEADER, size, None)
        spare = self.free_blocks.get(rounded)
        if spare:
            segment, offset = spare.pop()
        else:
            if self.current is None or self.bump + rounded > self.current.size:
                self.current = Segment.create(ARENA_SIZE)
                self.arenas.append(self.current)
                self.bump = SHM_SEGMENT_HEADER
            segment, offset = self.current, self.bump
            self.bump += rounded
        block = make_block(segment, offset, rounded, self)
        memset(block.pointer(), 0, rounded)
        return block

    cdef void release(self, Segment segment, size_t offset, size_t size) noexcept:
        if self.pid != shm_current_pid():
            return
        try:
            self.free_blocks.setdefault(size, []).append((segment, offset))
        except BaseException:
            pass


cdef Heap _heap = Heap()


def allocate(size_t size):
    """A zeroed block of at least size bytes of shared memory."""
    return _heap.allocate(size)
