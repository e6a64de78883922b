# barrier: threading.Barrier's state machine (filling, draining, resetting, broken) in shared memory,
# guarded by a robust shm_lock_t, with waiters sleeping on the futex word gen.
#
# Party death: each process that waits registers a slot (its pid, and how many of its threads are
# counted in count). A sleeper whose slice ends checks the registered pids; a dead one (killed before
# arriving, or while waiting) has its arrivals taken out of count and breaks the barrier, so the
# others get BrokenBarrierError instead of waiting forever. A process that exits cleanly withdraws
# its slots at exit (multiprocessing.util's exit hook), so finishing early is not mistaken for death.


cdef dict _barriers_used = {}          # (segment id, offset) -> weakref to a Barrier, this process
cdef uint32_t _exit_hook_pid = 0


def _withdraw_from_barriers():
    for ref in list(_barriers_used.values()):
        barrier = ref()
        if barrier is not None:
            (<Barrier>barrier).withdraw()
    _barriers_used.clear()


cdef class Barrier(SharedPrimitive):
    """A barrier shared between threads and processes (multiprocessing.Barrier)."""
    cdef object _action
    cdef object _timeout
    cdef uint32_t _registered_pid
    cdef object __weakref__

    cdef inline shm_barrier_t *barrier(self) noexcept:
        return <shm_barrier_t *>self._state

    def __init__(self, parties, action=None, timeout=None):
        if parties < 1:
            raise ValueError("parties must be > 0")
        if parties > 0xffff:
            raise ValueError("parties must be <= 65535")
        cdef uint32_t nslots = max(2 * parties, 64)
        self._allocate(sizeof(shm_barrier_t) + nslots * sizeof(shm_barrier_party_t))
        self.barrier().parties = parties
        self.barrier().nslots = nslots
        self._action = action
        self._timeout = timeout

    def __reduce__(self):
        return (_rebuild_barrier, (self._block.handle(), self._action, self._timeout))

    # --- the internal lock -------------------------------------------------------------------
    cdef int lock_state(self) except -1:
        cdef shm_barrier_t *b = self.barrier()
        cdef uint32_t dead_owner = 0
        if lock_try(&b.lock, shm_current_pid()):
            return 0
        lock_acquire(&b.lock, NO_DEADLINE, &dead_owner)
        if dead_owner:
            # A party died inside the barrier's bookkeeping: its changes may be half done.
            self.forget_dead_parties()
            self.break_barrier()
        return 0

    cdef inline void unlock_state(self) noexcept:
        lock_release(&self.barrier().lock)

    # --- helpers, all called with the internal lock held -------------------------------------
    cdef void announce(self) noexcept:
        cdef shm_barrier_t *b = self.barrier()
        shm_fetch_add_u32(&b.gen, 1)
        wake_sleepers(&b.gen, &b.sleepers, SHM_WAKE_ALL)

    cdef void break_barrier(self) noexcept:
        self.barrier().state = SHM_BARRIER_BROKEN
        self.announce()

    cdef shm_barrier_party_t *my_slot(self) noexcept:
        cdef shm_barrier_t *b = self.barrier()
        cdef uint32_t me = shm_current_pid()
        cdef uint32_t i
        cdef shm_barrier_party_t *free_slot = NULL
        for i in range(b.nslots):
            if b.slot[i].pid == me:
                return &b.slot[i]
            if b.slot[i].pid == 0 and free_slot == NULL:
                free_slot = &b.slot[i]
        if free_slot != NULL:
            free_slot.pid = me
            free_slot.arrived = 0
        return free_slot            # NULL when every slot is taken: this process goes unwatched

    cdef bint forget_dead_parties(self) noexcept:
        cdef shm_barrier_t *b = self.barrier()
        cdef uint32_t me = shm_current_pid()
        cdef uint32_t i
        cdef bint found = False
        for i in range(b.nslots):
            if b.slot[i].pid != 0 and b.slot[i].pid != me and not shm_pid_alive(b.slot[i].pid):
                b.count -= b.slot[i].arrived
                b.slot[i].pid = 0
                b.slot[i].arrived = 0
                found = True
        return found

    cdef int register(self) except -1:
        global _exit_hook_pid
        cdef uint32_t me = shm_current_pid()
        if self._registered_pid == me:
            return 0
        self._registered_pid = me
        if _exit_hook_pid != me:
            _barriers_used.clear()      # inherited from a parent: not ours to withdraw
            _mp_util.Finalize(None, _withdraw_from_barriers, exitpriority=1)
            _exit_hook_pid = me
        _barriers_used[(self._block.segment.id, self._block.offset)] = _weakref.ref(self)
        return 0

    cdef void withdraw(self) noexcept:
        cdef shm_barrier_t *b = self.barrier()
        cdef uint32_t me = shm_current_pid()
        cdef uint32_t i
        try:
            self.lock_state()
        except BaseException:
            return
        for i in range(b.nslots):
            if b.slot[i].pid == me and b.slot[i].arrived == 0:
                b.slot[i].pid = 0
        self.unlock_state()

    cdef WaitResult sleep(self, int64_t deadline) except *:
        """Give up the internal lock, wait for gen to move (one slice at most), take it back."""
        cdef shm_barrier_t *b = self.barrier()
        cdef uint32_t gen = shm_load_u32(&b.gen)
        cdef WaitResult result
        self.unlock_state()
        with nogil:
            result = wait_while_equal(&b.gen, gen, &b.sleepers, deadline, True)
        interrupted = None
        try:
            after_wait(result)
        except BaseException as exc:
            interrupted = exc
        self.lock_state()
        if interrupted is not None:
            raise interrupted
        if result != WAIT_CHANGED and self.forget_dead_parties():
            self.break_barrier()
        return result

    # --- the public face ---------------------------------------------------------------------
    def wait(self, timeout=None):
        if timeout is None:
            timeout = self._timeout
        cdef int64_t deadline = deadline_after(timeout)
        cdef shm_barrier_t *b = self.barrier()
        cdef shm_barrier_party_t *slot
        cdef uint32_t index
        self.register()
        self.lock_state()
        try:
            slot = self.my_slot()
            while b.state == SHM_BARRIER_DRAINING or b.state == SHM_BARRIER_RESETTING:
                self.sleep(NO_DEADLINE)
            if b.state < 0:
                raise BrokenBarrierError
            index = b.count
            b.count += 1
            if slot != NULL:
                slot.arrived += 1
            try:
                if index + 1 == b.parties:
                    try:
                        if self._action is not None:
                            self._action()
                    except BaseException:
                        self.break_barrier()
                        raise
                    b.state = SHM_BARRIER_DRAINING
                    self.announce()
                else:
                    while b.state == SHM_BARRIER_FILLING:
                        if self.sleep(deadline) == WAIT_TIMEOUT and b.state == SHM_BARRIER_FILLING:
                            self.break_barrier()
                    if b.state < 0:
                        raise BrokenBarrierError
                return index
            finally:
                b.count -= 1
                if slot != NULL and slot.pid == shm_current_pid():
                    slot.arrived -= 1
                if b.count == 0 and (b.state == SHM_BARRIER_DRAINING or b.state == SHM_BARRIER_RESETTING):
                    b.state = SHM_BARRIER_FILLING
                    self.announce()
        finally:
            self.unlock_state()

    def reset(self):
        cdef shm_barrier_t *b = self.barrier()
        self.lock_state()
        if b.count > 0:
            if b.state == SHM_BARRIER_FILLING or b.state == SHM_BARRIER_BROKEN:
                b.state = SHM_BARRIER_RESETTING
        else:
            b.state = SHM_BARRIER_FILLING
        self.announce()
        self.unlock_state()

    def abort(self):
        self.lock_state()
        self.break_barrier()
        self.unlock_state()

    @property
    def parties(self):
        return self.barrier().parties

    @property
    def n_waiting(self):
        cdef shm_barrier_t *b = self.barrier()
        self.lock_state()
        waiting = b.count if b.state == SHM_BARRIER_FILLING else 0
        self.unlock_state()
        return waiting

    @property
    def broken(self):
        return shm_load_i32(&self.barrier().state) == SHM_BARRIER_BROKEN

    def __repr__(self):
        cls = type(self)
        try:
            if self.broken:
                return f"<{cls.__module__}.{cls.__qualname__} at {id(self):#x}: broken>"
            return (f"<{cls.__module__}.{cls.__qualname__} at {id(self):#x}:"
                    f" waiters={self.n_waiting}/{self.parties}>")
        except Exception:
            return f"<{cls.__module__}.{cls.__qualname__} at {id(self):#x}>"


def _rebuild_barrier(handle, action, timeout):
    cdef Barrier barrier = Barrier.__new__(Barrier)
    barrier._bind(Block.attach(handle))
    barrier._action = action
    barrier._timeout = timeout
    return barrier
