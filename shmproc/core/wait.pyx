# wait: how a thread waits for a shared word to change. Spin, yield, then sleep on the futex.
# Both spin policies live here: the adaptive one the primitives use (spin_while_equal, and lock.pyx's
# acquiring spin, which learns through the same budget), and the ring's time-based one (spin_for).
#
# Why this order: on these virtual machines a futex wake costs tens of microseconds while a spinning
# hand-off costs well under one, so a short spin catches most hand-offs. The spin is bounded and
# followed by a yield, because with more runnable processes than cores the spinner may be holding
# the very core the other side needs. Sleep happens in slices of SLEEP_SLICE_NS so the caller can run
# signal handlers (Ctrl-C) and check that its peers are alive, however the signal was delivered.
#
# The "sleepers" count makes a wake free when nobody sleeps: a sleeper increments it *before* its last
# look at the word, a waker changes the word *before* reading sleepers, with a full fence on each
# side, so either the sleeper sees the new word or the waker sees the sleeper (Dekker).

cdef int SPIN_MIN = 16
cdef int SPIN_MAX = 2048                     # ~50 us of pause here: about what a sleep + wake costs
cdef int YIELD_ITERATIONS = 2
cdef int64_t SLEEP_SLICE_NS = 100_000_000
cdef int64_t SHORT_SLEEP_NS = 50_000         # woken sooner than this: spinning would have caught it

# How long a spin is worth trying, learnt by this process from what happened after it:
# - a spin that succeeded after i rounds pulls the budget towards 2*i;
# - a wait that only succeeded after yielding the core halves it (the peer needed our core: with
#   more runnable processes than cores, spinning steals from the very process we wait for);
# - a sleep that was woken quickly doubles it (the hand-off was a little longer than the spin);
#   a long sleep halves it (the peer was busy: spinning is wasted work).
# Racy updates from several threads are harmless: it is a hint.
cdef int spin_budget = 256


cdef inline int spin_limit() noexcept nogil:
    return spin_budget


cdef inline void spin_succeeded(int rounds) noexcept nogil:
    global spin_budget
    spin_budget += (2 * rounds + SPIN_MIN - spin_budget) // 4


cdef inline void spin_wasted() noexcept nogil:
    global spin_budget
    spin_budget = spin_budget // 2 if spin_budget > 2 * SPIN_MIN else SPIN_MIN


cdef inline void learn_from_sleep(int64_t slept_ns) noexcept nogil:
    global spin_budget
    if slept_ns >= SHORT_SLEEP_NS:
        spin_wasted()
    elif spin_budget < SPIN_MAX:
        spin_budget = 2 * spin_budget if 2 * spin_budget < SPIN_MAX else SPIN_MAX


cdef inline int64_t sleep_limit(int64_t now, int64_t deadline) noexcept nogil:
    cdef int64_t until = now + SLEEP_SLICE_NS
    if deadline != NO_DEADLINE and deadline < until:
        return deadline
    return until


cdef inline WaitResult result_of_sleep(int rc, int64_t until, int64_t deadline) noexcept nogil:
    if rc == EINTR:
        return WAIT_INTERRUPTED
    if rc == ETIMEDOUT:
        return WAIT_TIMEOUT if until == deadline else WAIT_SLICE
    return WAIT_CHANGED


cdef bint spin_while_equal(uint32_t *word, uint32_t expected) noexcept nogil:
    """True if the word changed during a bounded spin."""
    cdef int i, limit = spin_limit()
    for i in range(limit):
        if shm_load_u32(word) != expected:
            spin_succeeded(i)
            return True
        shm_cpu_relax()
    for i in range(YIELD_ITERATIONS):
        sched_yield()
        if shm_load_u32(word) != expected:
            spin_wasted()
            return True
    return False


# The ring's policy: how long a reader spins for a message before it sleeps. A Python peer needs a
# microsecond or two to answer, and a futex sleep + wake costs ~5-50 us on these VMs, so the ring
# spins longer than the locks do (ping-pong over two queues, processes on two cores: 0.5 us a round
# trip against ~10 us with the locks' adaptive spin). It yields the core every half microsecond, so
# that a peer sharing its core gets to run (same ping-pong on one core: 7 us; multiprocessing.Queue:
# 40 us).
cdef int64_t RING_SPIN_NS = 20_000
cdef int64_t RING_YIELD_EVERY_NS = 500


cdef bint spin_for(uint32_t *word, uint32_t expected, int64_t budget_ns) noexcept nogil:
    """Spin, yielding the core every RING_YIELD_EVERY_NS, up to budget_ns while *word == expected;
    True if it changed."""
    cdef int64_t now = shm_monotonic_ns()
    cdef int64_t until = now + budget_ns
    cdef int64_t next_yield = now + RING_YIELD_EVERY_NS
    cdef int i
    while True:
        for i in range(64):
            if shm_load_u32(word) != expected:
                return True
            shm_cpu_relax()
        now = shm_monotonic_ns()
        if now >= until:
            return False
        if now >= next_yield:
            sched_yield()
            next_yield = now + RING_YIELD_EVERY_NS


cdef WaitResult wait_while_equal(uint32_t *word, uint32_t expected, uint32_t *sleepers,
                                 int64_t deadline, bint spin) noexcept nogil:
    """Wait (at most one slice) while *word == expected. The caller re-checks its condition."""
    if spin and spin_while_equal(word, expected):
        return WAIT_CHANGED
    cdef int64_t now = shm_monotonic_ns()
    if deadline != NO_DEADLINE and now >= deadline:
        return WAIT_TIMEOUT
    cdef int64_t until = sleep_limit(now, deadline)
    cdef int rc = 0
    shm_fetch_add_u32(sleepers, 1)
    shm_fence_seq_cst()
    if shm_load_u32(word) == expected:
        rc = shm_futex_wait(word, expected, until - now)
        if rc == 0 and spin:
            learn_from_sleep(shm_monotonic_ns() - now)
    shm_fetch_sub_u32(sleepers, 1)
    return result_of_sleep(rc, until, deadline)


cdef inline uint32_t *low_half(uint64_t *index) noexcept nogil:
    # The futex word of a 64-bit counter: its low half, at its own address (ring.h checks endianness).
    return <uint32_t *>index


cdef inline void wake_sleepers(uint32_t *word, uint32_t *sleepers, int n) noexcept nogil:
    """After changing *word: wake up to n sleepers, with no system call when there are none."""
    shm_fence_seq_cst()
    if shm_load_relaxed_u32(sleepers) != 0:
        shm_futex_wake(word, n)
