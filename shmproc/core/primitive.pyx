# primitive: what every shared synchronization object has in common: a Block holding its state,
# and a pickled form that is just the block's handle (plus whatever the subclass adds).

cdef class SharedPrimitive:
    cdef Block _block
    cdef void *_state

    cdef int _bind(self, Block block) except -1:
        self._block = block
        self._state = block.pointer()
        return 0

    cdef int _allocate(self, size_t size) except -1:
        return self._bind(_heap.allocate(size))

    def __reduce__(self):
        return (_rebuild_primitive, (type(self), self._block.handle()))

    @property
    def _semlock(self):
        # multiprocessing's own Queue (and so concurrent.futures' process pool, given a shmproc
        # context) reaches through _semlock for _is_zero() and friends: we are our own semlock.
        return self


def _rebuild_primitive(cls, handle):
    cdef SharedPrimitive obj = cls.__new__(cls)
    obj._bind(Block.attach(handle))
    return obj


cdef str current_owner_name():
    """multiprocessing's way of naming the current owner in a lock's repr."""
    name = _mp_process.current_process().name
    thread_name = _threading.current_thread().name
    if thread_name != "MainThread":
        name += "|" + thread_name
    return name
