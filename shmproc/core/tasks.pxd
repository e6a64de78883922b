# tasks' interface: a JoinableQueue's task accounting, as a ring uses it.

ctypedef struct task_holder_t:
    shm_task_holder_t *holders        # the channel's task holder slots
    int slot                          # this process's slot, once pid is its pid (-1: none free)
    uint32_t pid

cdef void count_tasks(task_holder_t *mine, int64_t taken, int64_t done) noexcept
cdef int task_done(shm_ring_t *ring, task_holder_t *mine) except -1
cdef int join_tasks(shm_ring_t *ring, task_holder_t *mine) except -1
