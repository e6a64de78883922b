# errors: the exceptions the core raises, and the one place that turns a wait status into one.
#
# Code that runs without the GIL returns a WaitResult; the caller, holding the GIL again, turns it
# into Python behaviour here, so every primitive reacts to Ctrl-C and timeouts the same way.

import threading as _threading

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
