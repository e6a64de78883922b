from libc.stdint cimport uint32_t, uint64_t

cdef extern from "process_identity.h" nogil:
    int shm_identity_init()
    uint32_t shm_current_pid()
    uint64_t shm_current_thread()
    bint shm_pid_alive(uint32_t pid)
