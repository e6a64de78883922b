# lock: Lock and RLock on one futex word that holds the owner's pid.
#
# state == 0 means free; otherwise it is the owner's pid, with SHM_LOCK_SLEEPERS set once a waiter
# may be asleep (Drepper's three-state mutex, "Futexes Are Tricky"). Because the pid is in the word
# itself, a waiter whose sleep slice ends can always tell whom it waits for, and if that process has
# died it takes the word over with one compare-and-swap (so exactly one waiter recovers the lock),
# releases it and raises OwnerDiedError.

cdef inline bint lock_try(shm_lock_t *lock, uint32_t me) noexcept nogil:
    cdef uint32_t expected = 0
    return shm_cas_u32(&lock.state, &expected, me)


cdef WaitResult lock_wait(shm_lock_t *lock, uint32_t me, int64_t deadline, bint spin) noexcept nogil:
    """Acquire, or return at the end of one sleep slice; WAIT_ACQUIRED when the lock is ours."""
    cdef uint32_t state, expected
    cdef int i, rc, limit
    cdef int64_t now, until
    if spin:
        limit = spin_limit()
        for i in range(limit):
            if shm_load_relaxed_u32(&lock.state) == 0 and lock_try(lock, me):
                spin_succeeded(i)
                return WAIT_ACQUIRED
            shm_cpu_relax()
        for i in range(YIELD_ITERATIONS):
            sched_yield()
            if lock_try(lock, me):
                spin_wasted()
                return WAIT_ACQUIRED
    while True:
        state = shm_load_u32(&lock.state)
        if state == 0:
            # Taken after a wake-up: others may still sleep, so keep the flag and wake them later.
            expected = 0
            if shm_cas_u32(&lock.state, &expected, me | SHM_LOCK_SLEEPERS):
                return WAIT_ACQUIRED
            continue
        if not (state & SHM_LOCK_SLEEPERS):
            expected = state
            if not shm_cas_u32(&lock.state, &expected, state | SHM_LOCK_SLEEPERS):
                continue
            state = state | SHM_LOCK_SLEEPERS
        now = shm_monotonic_ns()
        if deadline != NO_DEADLINE and now >= deadline:
            return WAIT_TIMEOUT
        until = sleep_limit(now, deadline)
        rc = shm_futex_wait(&lock.state, state, until - now)
        if rc == 0 and spin:
            learn_from_sleep(shm_monotonic_ns() - now)
            spin = False
        if rc == EINTR or rc == ETIMEDOUT:
            return result_of_sleep(rc, until, deadline)


cdef inline void lock_release(shm_lock_t *lock) noexcept nogil:
    shm_store_relaxed_u64(&lock.owner_thread, 0)
    if shm_exchange_u32(&lock.state, 0) & SHM_LOCK_SLEEPERS:
        shm_futex_wake(&lock.state, 1)


cdef uint32_t lock_take_from_dead_owner(shm_lock_t *lock, uint32_t me) noexcept nogil:
    """If the lock's owner is dead, make it ours and return the dead pid; else return 0."""
    cdef uint32_t state = shm_load_u32(&lock.state)
    cdef uint32_t owner = state & SHM_LOCK_PID_MASK
    if owner == 0 or owner == me or shm_pid_alive(owner):
        return 0
    if shm_cas_u32(&lock.state, &state, me | (state & SHM_LOCK_SLEEPERS)):
        shm_store_relaxed_u32(&lock.depth, 0)
        shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
        return owner
    return 0


cdef int lock_acquire(shm_lock_t *lock, int64_t deadline, uint32_t *dead_owner) except -1:
    """Block until the lock is ours (1) or the deadline passes (0). If the owner died, the lock is
    taken over, *dead_owner receives its pid, and 1 is returned: the caller decides what to tell."""
    cdef uint32_t me = shm_current_pid()
    cdef WaitResult result
    cdef bint spin = True, timed_out
    while True:
        with nogil:
            result = lock_wait(lock, me, deadline, spin)
        spin = False
        if result == WAIT_ACQUIRED:
            shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
            return 1
        timed_out = after_wait(result)
        if result != WAIT_CHANGED:
            # The owner did not hand the lock over in time: is it still alive?
            dead_owner[0] = lock_take_from_dead_owner(lock, me)
            if dead_owner[0]:
                return 1
        if timed_out:
            if lock_try(lock, me):
                shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
                return 1
            return 0


cdef class SharedLock(SharedPrimitive):
    """What Lock and RLock share, and what Condition needs from its lock."""

    cdef inline shm_lock_t *lock(self) noexcept:
        return <shm_lock_t *>self._state

    def __init__(self):
        self._allocate(sizeof(shm_lock_t))

    cdef bint is_mine(self) noexcept:
        cdef shm_lock_t *lock = self.lock()
        return ((shm_load_relaxed_u32(&lock.state) & SHM_LOCK_PID_MASK) == shm_current_pid()
                and shm_load_relaxed_u64(&lock.owner_thread) == shm_current_thread())

    cdef int acquire_blocking(self, int64_t deadline) except -1:
        """1 if acquired, 0 on timeout; raises OwnerDiedError after recovering a dead owner's lock."""
        cdef shm_lock_t *lock = self.lock()
        cdef uint32_t dead_owner = 0
        cdef int acquired = lock_acquire(lock, deadline, &dead_owner)
        if dead_owner:
            lock_release(lock)
            raise OwnerDiedError(
                f"process {dead_owner} died holding a shared {type(self).__name__}; the lock was "
                f"recovered and is free again, but the data it guarded may be inconsistent",
                dead_owner)
        return acquired

    # Condition's contract with its lock: give the lock up entirely, then take it back as it was.
    cdef uint32_t release_save(self) except? 0:
        raise NotImplementedError

    cdef int acquire_restore(self, uint32_t depth) except -1:
        raise NotImplementedError


cdef class Lock(SharedLock):
    """A non-recursive lock shared between threads and processes (multiprocessing.Lock).

    Like multiprocessing's, it may be released by a thread or process other than the one that
    acquired it."""

    def acquire(self, block=True, timeout=None):
        cdef shm_lock_t *lock = self.lock()
        cdef int64_t deadline = NO_DEADLINE if timeout is None else deadline_after(timeout)
        if lock_try(lock, shm_current_pid()):
            shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
            return True
        if not block:
            return False
        return self.acquire_blocking(deadline) == 1

    cdef int release_checked(self) except -1:
        cdef shm_lock_t *lock = self.lock()
        if shm_load_relaxed_u32(&lock.state) == 0:
            raise ValueError("semaphore or lock released too many times")
        lock_release(lock)
        return 0

    def release(self):
        self.release_checked()

    def __enter__(self):
        cdef shm_lock_t *lock = self.lock()
        if lock_try(lock, shm_current_pid()):
            shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
            return True
        return self.acquire_blocking(NO_DEADLINE) == 1

    def __exit__(self, exc_type=None, exc_value=None, traceback=None):
        # Explicit parameters and a C-level release: a *args signature and a Python-level call to
        # release() were a third of `with lock:`'s cost.
        self.release_checked()

    cdef uint32_t release_save(self) except? 0:
        lock_release(self.lock())
        return 1

    cdef int acquire_restore(self, uint32_t depth) except -1:
        self.acquire_blocking(NO_DEADLINE)
        return 0

    def _is_mine(self):
        return self.is_mine()

    def __repr__(self):
        try:
            state = shm_load_relaxed_u32(&self.lock().state)
            if self.is_mine():
                name = current_owner_name()
            elif state == 0:
                name = "None"
            elif (state & SHM_LOCK_PID_MASK) == shm_current_pid():
                name = "SomeOtherThread"
            else:
                name = "SomeOtherProcess"
        except Exception:
            name = "unknown"
        return f"<{type(self).__name__}(owner={name})>"


cdef class RLock(SharedLock):
    """A recursive lock shared between threads and processes (multiprocessing.RLock): only the
    thread that holds it may release it."""

    cdef inline bint enter_again(self) noexcept:
        """If we already hold it, count one more level and say so."""
        cdef shm_lock_t *lock = self.lock()
        if self.is_mine():
            lock.depth += 1
            return True
        return False

    cdef inline bint take_free(self) noexcept:
        cdef shm_lock_t *lock = self.lock()
        if lock_try(lock, shm_current_pid()):
            shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
            lock.depth = 1
            return True
        return False

    cdef int acquire_first(self, int64_t deadline) except -1:
        if self.acquire_blocking(deadline):
            self.lock().depth = 1
            return 1
        return 0

    def acquire(self, block=True, timeout=None):
        cdef int64_t deadline = NO_DEADLINE if timeout is None else deadline_after(timeout)
        if self.enter_again() or self.take_free():
            return True
        if not block:
            return False
        return self.acquire_first(deadline) == 1

    cdef int release_checked(self) except -1:
        cdef shm_lock_t *lock = self.lock()
        if not self.is_mine():
            raise AssertionError("attempt to release recursive lock not owned by thread")
        lock.depth -= 1
        if lock.depth == 0:
            lock_release(lock)
        return 0

    def release(self):
        self.release_checked()

    def __enter__(self):
        if self.enter_again() or self.take_free():
            return True
        return self.acquire_first(NO_DEADLINE) == 1

    def __exit__(self, exc_type=None, exc_value=None, traceback=None):
        self.release_checked()

    cdef uint32_t release_save(self) except? 0:
        cdef shm_lock_t *lock = self.lock()
        cdef uint32_t depth = lock.depth
        lock.depth = 0
        lock_release(lock)
        return depth

    cdef int acquire_restore(self, uint32_t depth) except -1:
        self.acquire_blocking(NO_DEADLINE)
        self.lock().depth = depth
        return 0

    def _is_mine(self):
        return self.is_mine()

    def _count(self):
        return self.lock().depth if self.is_mine() else 0

    def __repr__(self):
        try:
            lock = self.lock()
            state = shm_load_relaxed_u32(&lock.state)
            if self.is_mine():
                name, count = current_owner_name(), lock.depth
            elif state == 0:
                name, count = "None", 0
            elif (state & SHM_LOCK_PID_MASK) == shm_current_pid():
                name, count = "SomeOtherThread", "nonzero"
            else:
                name, count = "SomeOtherProcess", "nonzero"
        except Exception:
            name, count = "unknown", "unknown"
        return f"<{type(self).__name__}({name}, {count})>"
