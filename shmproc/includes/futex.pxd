from libc.stdint cimport int64_t, uint32_t

cdef extern from "futex.h" nogil:
    int shm_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns)
    int shm_futex_wake(uint32_t *word, int n)
    int64_t shm_monotonic_ns()
    const int SHM_WAKE_ALL
