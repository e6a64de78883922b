# event: Event on one futex word, the flag.

cdef class Event(SharedPrimitive):
    """An event flag shared between threads and processes (multiprocessing.Event)."""

    cdef inline shm_event_t *event(self) noexcept:
        return <shm_event_t *>self._state

    def __init__(self):
        self._allocate(sizeof(shm_event_t))

    def is_set(self):
        return shm_load_u32(&self.event().flag) != 0

    def set(self):
        cdef shm_event_t *event = self.event()
        shm_store_u32(&event.flag, 1)
        wake_sleepers(&event.flag, &event.sleepers, SHM_WAKE_ALL)

    def clear(self):
        shm_store_u32(&self.event().flag, 0)

    def wait(self, timeout=None):
        cdef shm_event_t *event = self.event()
        cdef int64_t deadline = NO_DEADLINE if timeout is None else deadline_after(timeout)
        if shm_load_u32(&event.flag):
            return True
        cdef WaitResult result
        cdef bint spin = True
        while True:
            with nogil:
                result = wait_while_equal(&event.flag, 0, &event.sleepers, deadline, spin)
            spin = False
            if shm_load_u32(&event.flag):
                return True
            if after_wait(result):
                return False

    def __repr__(self):
        try:
            status = "set" if self.is_set() else "unset"
        except Exception:
            status = "unknown"
        return f"<{type(self).__qualname__} at {id(self):#x} {status}>"
