# errors: the exceptions the core raises; the one place that turns a wait status into Python
# behaviour (after_wait), and the one place that turns a failed system call into an OSError
# (shm_os_error).
#
# Code that runs without the GIL returns a WaitResult; the caller, holding the GIL again, hands it
# to after_wait, so every primitive reacts to Ctrl-C, timeouts and dead peers the same way.

BrokenBarrierError = _threading.BrokenBarrierError


class OwnerDiedError(RuntimeError):
    """The process holding a shared Lock or RLock died without releasing it.

    Raised once, in the first waiter that notices (within about 0.1 s of the death). By then the
    lock has been recovered and released: it is free again, and the caller does *not* hold it.
    Whatever the lock protected may have been left half-updated by the dead owner; the caller
    decides whether to repair it, then retries the acquire.
    """

    def __init__(self, message, pid):
        super().__init__(message)
        self.pid = pid


cdef enum WaitResult:
    WAIT_CHANGED = 0      # the awaited word changed (or a spurious wake-up): check again
    WAIT_TIMEOUT = 1      # the caller's deadline passed
    WAIT_SLICE = 2        # a sleep slice ended: run signal handlers, check peers, wait again
    WAIT_INTERRUPTED = 3  # a signal arrived (EINTR): run signal handlers, wait again
    WAIT_ACQUIRED = 4     # lock waits only: the lock is now ours


cdef int64_t NO_DEADLINE = -1


cdef int64_t deadline_after(object timeout) except? -2:
    """The absolute monotonic deadline in ns for a user timeout; NO_DEADLINE for None.

    multiprocessing's rules, for every call that takes a timeout: a negative timeout means 0 (try
    once, do not wait); a non-number raises TypeError; NaN raises ValueError (multiprocessing's
    pipe-based waits do; its semaphore-based ones raise OSError(EINVAL) when they have to wait);
    infinity, or anything past ~31 years, waits forever (multiprocessing raises OverflowError or
    OSError there). See docs/differences.md, "Timeouts"."""
    if timeout is None:
        return NO_DEADLINE
    cdef double seconds = timeout
    if seconds != seconds:
        raise ValueError("timeout must be a number, not NaN")
    if seconds <= 0:
        return shm_monotonic_ns()
    if seconds > 1e9:
        return NO_DEADLINE
    return shm_monotonic_ns() + <int64_t>(seconds * 1e9)


cdef int run_signal_handlers() except -1:
    """Between sleep slices: let Python run pending signal handlers (Ctrl-C raises here)."""
    if PyErr_CheckSignals() < 0:
        return -1
    return 0


ctypedef int (*peer_check_t)(void *peers) except -1


cdef bint after_wait(WaitResult result, peer_check_t check_peers=NULL, void *peers=NULL) except -1:
    """What a waiter does with a wait's result once it holds the GIL again: True when its deadline
    has passed (it may look once more, then gives up), False to look again. A wait that ended
    without a change (a sleep slice, a signal, the deadline) first runs Python's signal handlers,
    so Ctrl-C raises here, then check_peers(peers), which raises if the peers the waiter depends
    on are gone (a dead lock owner, a closed reader, a dead task holder)."""
    if result == WAIT_CHANGED or result == WAIT_ACQUIRED:
        return False
    run_signal_handlers()
    if check_peers != NULL:
        check_peers(peers)
    return result == WAIT_TIMEOUT


cdef object shm_os_error(int err, str what):
    """The OSError for a system call on shared memory that failed with errno err, one message per
    condition. what says what was being done ("allocate 4096 bytes of shared memory"). Running out
    of shared memory (ENOSPC; ENOMEM and EFBIG from tmpfs) keeps its errno and says what to do."""
    if err == ENOSPC or err == ENOMEM or err == EFBIG:
        return OSError(err, f"not enough shared memory to {what} in {shm_directory()} (make it "
                            f"larger, or point SHMPROC_SHM_DIR at a larger tmpfs)")
    return OSError(err, f"cannot {what}: {_os.strerror(err)}")
