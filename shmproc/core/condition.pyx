# condition: Condition over a shared Lock or RLock.
#
# tickets packs (waiters << 32 | tokens): wait() registers a waiter under the user's lock; notify(n)
# (also under the lock) grants up to n tokens, never more than there are waiters without one, and
# bumps seq; a waiter leaves by taking a token (notified) or, on timeout, by withdrawing. A waiter may
# only take a token if seq moved since it registered: a notify that happened before it arrived was
# meant for somebody else. Because registration and notify both happen under the user's lock, seq
# read at registration is exactly "the notifies I have seen".

cdef uint64_t ONE_WAITER = <uint64_t>1 << 32
cdef uint64_t TOKEN_MASK = 0xffffffffu


cdef class Condition(SharedPrimitive):
    """A condition variable shared between threads and processes (multiprocessing.Condition)."""
    cdef SharedLock _lock

    cdef inline shm_condition_t *cond(self) noexcept:
        return <shm_condition_t *>self._state

    def __init__(self, lock=None):
        if lock is None:
            lock = RLock()
        elif not isinstance(lock, SharedLock):
            raise TypeError(f"Condition needs a shmproc Lock or RLock, not {type(lock).__name__}")
        self._lock = lock
        self._allocate(sizeof(shm_condition_t))

    def __reduce__(self):
        return (_rebuild_condition, (self._lock, self._block.handle()))

    def acquire(self, block=True, timeout=None):
        return self._lock.acquire(block, timeout)

    def release(self):
        return self._lock.release()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc_info):
        return self._lock.__exit__(*exc_info)

    cdef bint leave(self, uint32_t seen_seq, bint may_take_token) noexcept:
        """Stop waiting: take a token if one is ours to take (True), else withdraw (False)."""
        cdef shm_condition_t *cond = self.cond()
        cdef uint64_t tickets = shm_load_u64(&cond.tickets)
        cdef bint eligible
        while True:
            eligible = may_take_token and (tickets & TOKEN_MASK) != 0 and shm_load_u32(&cond.seq) != seen_seq
            if eligible:
                if shm_cas_u64(&cond.tickets, &tickets, tickets - ONE_WAITER - 1):
                    return True
            elif shm_cas_u64(&cond.tickets, &tickets, tickets - ONE_WAITER):
                return False

    cdef bint take_token(self, uint32_t seen_seq) noexcept:
        cdef shm_condition_t *cond = self.cond()
        cdef uint64_t tickets = shm_load_u64(&cond.tickets)
        while (tickets & TOKEN_MASK) != 0 and shm_load_u32(&cond.seq) != seen_seq:
            if shm_cas_u64(&cond.tickets, &tickets, tickets - ONE_WAITER - 1):
                return True
        return False

    def wait(self, timeout=None):
        if not self._lock.is_mine():
            raise AssertionError("must acquire() condition before using wait()")
        cdef int64_t deadline = deadline_after(timeout)
        cdef shm_condition_t *cond = self.cond()
        cdef uint32_t seen_seq = shm_load_u32(&cond.seq)
        cdef uint32_t seq
        cdef WaitResult result
        cdef bint notified = False, spin = True, timed_out
        shm_fetch_add_u64(&cond.tickets, ONE_WAITER)
        cdef uint32_t depth = self._lock.release_save()
        try:
            while True:
                seq = shm_load_u32(&cond.seq)
                if self.take_token(seen_seq):
                    notified = True
                    break
                with nogil:
                    result = wait_while_equal(&cond.seq, seq, &cond.sleepers, deadline, spin)
                spin = False
                try:
                    timed_out = after_wait(result)
                except BaseException:
                    self.leave(seen_seq, False)
                    raise
                if timed_out:
                    notified = self.leave(seen_seq, True)
                    break
        finally:
            self._lock.acquire_restore(depth)
        return notified

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        if result:
            return result
        endtime = None if timeout is None else _time.monotonic() + timeout
        waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - _time.monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        if not self._lock.is_mine():
            raise AssertionError("lock is not owned")
        if n < 0:
            raise ValueError("n must be >= 0")
        cdef shm_condition_t *cond = self.cond()
        cdef uint64_t tickets = shm_load_u64(&cond.tickets)
        cdef uint64_t unnotified, grant
        cdef uint64_t wanted = min(n, 0xffffffff)
        while True:
            unnotified = (tickets >> 32) - (tickets & TOKEN_MASK)
            grant = unnotified if wanted > unnotified else wanted
            if grant == 0:
                return
            if shm_cas_u64(&cond.tickets, &tickets, tickets + grant):
                break
        shm_fetch_add_u32(&cond.seq, 1)
        wake_sleepers(&cond.seq, &cond.sleepers, SHM_WAKE_ALL)

    def notify_all(self):
        self.notify(0xffffffff)

    def __repr__(self):
        try:
            tickets = shm_load_u64(&self.cond().tickets)
            waiters = (tickets >> 32) - (tickets & TOKEN_MASK)
        except Exception:
            waiters = "unknown"
        return f"<{type(self).__name__}({self._lock!r}, {waiters})>"


def _rebuild_condition(lock, handle):
    cdef Condition cond = Condition.__new__(Condition)
    cond._lock = lock
    cond._bind(Block.attach(handle))
    return cond
