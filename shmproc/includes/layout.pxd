# Declarations for layout.h: the structures shared between processes.
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t

cdef extern from "layout.h" nogil:
    const size_t SHM_CACHE_LINE
    const uint64_t SHM_SEGMENT_MAGIC
    const size_t SHM_SEGMENT_HEADER
    ctypedef struct shm_segment_header_t:
        uint64_t magic
        uint8_t id[16]
        uint64_t size

    const uint32_t SHM_LOCK_PID_MASK
    const uint32_t SHM_LOCK_SLEEPERS
    ctypedef struct shm_lock_t:
        uint32_t state
        uint32_t depth
        uint64_t owner_thread

    ctypedef struct shm_semaphore_t:
        uint32_t value
        uint32_t sleepers
        uint32_t maxvalue

    ctypedef struct shm_event_t:
        uint32_t flag
        uint32_t sleepers

    ctypedef struct shm_condition_t:
        uint32_t seq
        uint32_t sleepers
        uint64_t tickets

    enum:
        SHM_BARRIER_FILLING
        SHM_BARRIER_DRAINING
        SHM_BARRIER_RESETTING
        SHM_BARRIER_BROKEN
    ctypedef struct shm_barrier_party_t:
        uint32_t pid
        uint32_t arrived
    ctypedef struct shm_barrier_t:
        shm_lock_t lock
        uint32_t gen
        uint32_t sleepers
        int32_t state
        uint32_t count
        uint32_t parties
        uint32_t nslots
        shm_barrier_party_t slot[1]
