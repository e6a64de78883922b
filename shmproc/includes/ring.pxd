# Declarations for ring.h: the shared layout of a message channel (rings and spill table).
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from shmproc.includes.layout cimport shm_lock_t

cdef extern from "ring.h" nogil:
    const uint64_t SHM_CHANNEL_MAGIC
    const int SHM_RING_MAX

    ctypedef struct shm_redo_t:
        uint64_t index
        uint64_t count
        uint32_t active

    ctypedef struct shm_ring_t:
        uint64_t capacity
        uint64_t window
        uint64_t data_offset
        uint64_t maxsize
        uint32_t joinable
        shm_lock_t producer_lock
        uint64_t tail
        uint64_t puts
        uint32_t data_sleepers
        shm_redo_t producer_redo
        shm_lock_t consumer_lock
        uint64_t head
        uint64_t gets
        uint32_t space_sleepers
        shm_redo_t consumer_redo
        uint64_t reserved
        uint64_t lap_end
        uint64_t tasks_done
        uint32_t join_sleepers
        uint32_t notify_mode
        uint32_t notify_signaled

    ctypedef struct shm_record_header_t:
        uint32_t length
        uint32_t kind

    enum:
        SHM_RECORD_SKIP
        SHM_RECORD_PICKLE
        SHM_RECORD_BUFFERS
        SHM_RECORD_BYTES
        SHM_RECORD_INT
        SHM_RECORD_FLOAT
        SHM_RECORD_STR
        SHM_RECORD_SPILL
        SHM_RECORD_RAW

    enum:
        SHM_NOTIFY_ENABLED
        SHM_NOTIFY_AFTER_FOREIGN
        SHM_NOTIFY_MIXED

    const size_t SHM_BUFFER_ALIGN
    ctypedef struct shm_buffers_t:
        uint32_t nbuffers
        uint32_t body_kind
        uint64_t stream_length
        uint64_t buffer_length[1]

    ctypedef struct shm_spill_ref_t:
        uint32_t slot
        uint32_t generation
        uint64_t length

    const uint32_t SHM_SPILL_EMPTY
    const uint32_t SHM_SPILL_FREE
    const uint32_t SHM_SPILL_QUEUED
    const uint32_t SHM_SPILL_HELD
    const int SHM_SPILL_SLOTS
    const uint64_t SHM_SPILL_GRANULE
    ctypedef struct shm_spill_slot_t:
        uint64_t offset
        uint64_t size
        uint32_t state
        uint32_t generation

    ctypedef struct shm_spill_table_t:
        shm_lock_t lock
        uint64_t next_offset
        uint32_t released
        uint32_t sleepers
        shm_spill_slot_t slot[1]

    const int SHM_TASK_HOLDERS
    ctypedef struct shm_task_holder_t:
        uint32_t pid
        uint64_t taken
        uint64_t done

    ctypedef struct shm_channel_t:
        uint64_t magic
        uint32_t nrings
        uint8_t spill_id[16]
        shm_spill_table_t spill
        shm_ring_t ring[2]
        shm_task_holder_t holder[1]
