# tasks: a JoinableQueue's task accounting: task_done(), join(), and which process holds the
# unfinished tasks, so that join() can tell a task that is slow from one that can never be done
# (docs/queues.md).
#
# multiprocessing's join() waits forever once a consumer dies between get() and task_done(). Ours
# keeps, per process, the count of messages it took and of task_done() calls it made, in a slot of
# the channel (shm_task_holder_t) that only that process writes. A waiting join() adds up the slots:
# a dead process that took more tasks than it finished holds tasks nobody will finish, unless other
# processes made that many task_done() calls for tasks they did not take (a consumer may hand its
# task to another process). Then join() raises TaskLostError instead of waiting.
#
# A slot's counts and the ring's own (gets, tasks_done) are two stores, in the order that lets a
# process killed between them show fewer tasks held, never more: `taken` after the head that frees
# the messages, `done` before the tasks_done it stands for. join() may then miss a lost task and
# wait (as multiprocessing's does), but it never reports one that is not lost.


class TaskLostError(RuntimeError):
    """JoinableQueue.join() cannot return: a process died holding tasks it had taken and not marked
    done. `pids` are the dead processes, `count` the tasks they hold. The tasks are not in the queue
    any more; call task_done() once for each task redone (or given up) to let join() return."""

    def __init__(self, message, pids, count):
        super().__init__(message)
        self.pids = pids
        self.count = count


cdef int claim_task_holder(shm_task_holder_t *holders) noexcept:
    """This process's slot: the one it claimed before, a free one, or one a dead process left with
    every task it took accounted for. -1 when all are taken (its tasks then go unwatched)."""
    cdef uint32_t me = shm_current_pid()
    cdef uint32_t pid
    cdef int i
    for i in range(SHM_TASK_HOLDERS):
        if shm_load_u32(&holders[i].pid) == me:
            return i
    for i in range(SHM_TASK_HOLDERS):
        pid = 0
        if shm_cas_u32(&holders[i].pid, &pid, me):
            return i
    for i in range(SHM_TASK_HOLDERS):
        pid = shm_load_u32(&holders[i].pid)
        if (shm_load_u64(&holders[i].taken) <= shm_load_u64(&holders[i].done)
                and not shm_pid_alive(pid) and shm_cas_u32(&holders[i].pid, &pid, me)):
            return i
    return -1


cdef object lost_tasks(shm_task_holder_t *holders):
    """(dead pids, tasks they hold that no live process has finished for them), or None."""
    cdef uint64_t taken, done
    cdef uint64_t held_by_dead = 0, finished_for_others = 0
    cdef uint32_t pid
    dead = []
    for i in range(SHM_TASK_HOLDERS):
        pid = shm_load_u32(&holders[i].pid)
        if pid == 0:
            continue
        taken, done = shm_load_u64(&holders[i].taken), shm_load_u64(&holders[i].done)
        if done > taken:
            finished_for_others += done - taken
        elif taken > done and not shm_pid_alive(pid):
            held_by_dead += taken - done
            dead.append(pid)
    if held_by_dead <= finished_for_others:
        return None
    return dead, held_by_dead - finished_for_others


# task_holder_t, this process's slot as a ring end holds it, is declared in tasks.pxd.

cdef void count_tasks(task_holder_t *mine, int64_t taken, int64_t done) noexcept:
    """Add to this process's task holder slot, claiming one first if needed."""
    cdef shm_task_holder_t *slot
    if mine.pid != shm_current_pid():
        mine.slot = claim_task_holder(mine.holders)
        mine.pid = shm_current_pid()
    if mine.slot < 0:
        return
    slot = &mine.holders[mine.slot]
    if taken:
        shm_store_u64(&slot.taken, slot.taken + <uint64_t>taken)
    if done:
        shm_store_u64(&slot.done, slot.done + <uint64_t>done)


cdef int task_done(shm_ring_t *ring, task_holder_t *mine) except -1:
    """JoinableQueue.task_done: every message ever put is a task, so the unfinished ones are
    puts - tasks_done, exact even when a producer dies mid-put (puts is published with its records,
    see ring.pyx publish)."""
    cdef uint64_t *done = &ring.tasks_done
    cdef uint64_t value = shm_load_u64(done)
    count_tasks(mine, 0, 1)
    while True:
        if value >= shm_load_u64(&ring.puts):
            count_tasks(mine, 0, -1)
            raise ValueError("task_done() called too many times")
        if shm_cas_u64(done, &value, value + 1):
            break
    if value + 1 == shm_load_u64(&ring.puts):
        wake_sleepers(low_half(done), &ring.join_sleepers, SHM_WAKE_ALL)
    return 0


cdef int join_tasks(shm_ring_t *ring, task_holder_t *mine) except -1:
    """JoinableQueue.join: wait until tasks_done catches up with puts; TaskLostError when a dead
    process holds tasks nobody will finish."""
    cdef uint64_t *done = &ring.tasks_done
    cdef uint64_t value
    cdef WaitResult result
    cdef bint spin = True
    while True:
        # tasks_done first: a task_done() after this read changes the word the wait is on.
        value = shm_load_u64(done)
        if value >= shm_load_u64(&ring.puts):
            return 0
        with nogil:
            result = wait_while_equal(low_half(done), <uint32_t>value, &ring.join_sleepers,
                                      NO_DEADLINE, spin)
        spin = False
        after_wait(result, check_tasks_not_lost, mine.holders)


cdef int check_tasks_not_lost(void *holders) except -1:
    """join() between sleep slices: raise TaskLostError if a dead process holds tasks."""
    lost = lost_tasks(<shm_task_holder_t *>holders)
    if lost is None:
        return 0
    pids, count = lost
    raise TaskLostError(
        f"join() cannot return: process{'es' if len(pids) > 1 else ''} "
        f"{', '.join(map(str, pids))} died holding {count} unfinished task"
        f"{'s' if count > 1 else ''} of this JoinableQueue", pids, count)
