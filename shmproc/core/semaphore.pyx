# semaphore: Semaphore and BoundedSemaphore on one futex word, the count itself.

cdef class Semaphore(SharedPrimitive):
    """A counting semaphore shared between threads and processes (multiprocessing.Semaphore)."""

    cdef inline shm_semaphore_t *sem(self) noexcept:
        return <shm_semaphore_t *>self._state

    def __init__(self, value=1):
        self._setup(value, UINT32_MAX)

    cdef int _setup(self, value, uint32_t maxvalue) except -1:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > SEMAPHORE_VALUE_MAX:
            raise OverflowError(f"semaphore initial value must be <= {SEMAPHORE_VALUE_MAX}")
        self._allocate(sizeof(shm_semaphore_t))
        self.sem().value = value
        self.sem().maxvalue = maxvalue
        return 0

    cdef inline bint take(self) noexcept:
        cdef shm_semaphore_t *sem = self.sem()
        cdef uint32_t value = shm_load_relaxed_u32(&sem.value)
        while value > 0:
            if shm_cas_u32(&sem.value, &value, value - 1):
                return True
        return False

    def acquire(self, block=True, timeout=None):
        cdef int64_t deadline = NO_DEADLINE if timeout is None else deadline_after(timeout)
        if self.take():
            return True
        if not block:
            return False
        return self.acquire_blocking(deadline)

    cdef bint acquire_blocking(self, int64_t deadline) except -1:
        cdef shm_semaphore_t *sem = self.sem()
        cdef WaitResult result
        cdef bint spin = True
        while True:
            with nogil:
                result = wait_while_equal(&sem.value, 0, &sem.sleepers, deadline, spin)
            spin = False
            if self.take():
                return True
            if after_wait(result):
                return False

    cdef int release_checked(self) except -1:
        cdef shm_semaphore_t *sem = self.sem()
        cdef uint32_t value = shm_load_relaxed_u32(&sem.value)
        while True:
            if value >= sem.maxvalue:
                raise ValueError("semaphore or lock released too many times")
            if shm_cas_u32(&sem.value, &value, value + 1):
                break
        wake_sleepers(&sem.value, &sem.sleepers, 1)
        return 0

    def release(self):
        self.release_checked()

    def __enter__(self):
        if self.take():
            return True
        return self.acquire_blocking(NO_DEADLINE)

    def __exit__(self, exc_type=None, exc_value=None, traceback=None):
        self.release_checked()          # a C call, as Lock's __exit__, not a Python-level release()

    def get_value(self):
        return shm_load_u32(&self.sem().value)

    def _is_zero(self):
        return shm_load_u32(&self.sem().value) == 0

    def __repr__(self):
        try:
            value = self.get_value()
        except Exception:
            value = "unknown"
        return f"<{type(self).__name__}(value={value})>"


cdef class BoundedSemaphore(Semaphore):
    """A semaphore that refuses to be released above its initial value (ValueError)."""

    def __init__(self, value=1):
        self._setup(value, value)

    def __repr__(self):
        try:
            value, maxvalue = self.get_value(), self.sem().maxvalue
        except Exception:
            value = maxvalue = "unknown"
        return f"<{type(self).__name__}(value={value}, maxvalue={maxvalue})>"
