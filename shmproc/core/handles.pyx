# handles: how a descriptor of this process reaches another process, and how that process opens it.
#
# A descriptor crosses a process boundary in one of two ways. While a process is being started
# (spawn, forkserver) it travels with the start itself (multiprocessing's reduction.DupFd), so the
# sender may close its copy as soon as start() returns. Otherwise it is named by (pid, fd) and the
# receiver opens /proc/<pid>/fd/<fd> (open_peer_fd): the sender must still hold it then. Every
# place that opens another process's descriptor goes through open_peer_fd, so a handle that can no
# longer be attached fails with one error, whatever it names.


# Per process being started: our descriptor -> the reference that passes it to the child.
_fds_passed_to_child = _weakref.WeakKeyDictionary()


cdef int open_peer_fd(object pid, object fd, int flags, str what) except -1:
    """This process's own descriptor for process pid's descriptor fd, opened with flags (O_CLOEXEC
    is added). FileNotFoundError, keeping the errno, if it cannot be opened: the sender has exited
    or closed it."""
    try:
        return _os.open(f"/proc/{pid}/fd/{fd}", flags | _os.O_CLOEXEC)
    except OSError as exc:
        raise FileNotFoundError(
            exc.errno, f"cannot attach {what}: process {pid}, which sent its handle, has exited or "
                       f"closed it (keep the object alive in the sender until the receiver has it)"
        ) from None


cdef object fd_reference(int fd, bint spawning):
    """How a descriptor of this process travels in a pickle: a DupFd while a process is being
    started, (pid, fd) otherwise; None for no descriptor."""
    if fd < 0:
        return None
    if spawning:
        # A Pipe's two ends share one segment: pass each descriptor once per process start.
        shared = _fds_passed_to_child.setdefault(_mp_context.get_spawning_popen(), {})
        if fd not in shared:
            shared[fd] = _mp_reduction.DupFd(fd)
        return shared[fd]
    return (<int>shm_current_pid(), fd)


cdef tuple where_to_open(object reference):
    """(pid, fd) to open through /proc for a descriptor reference: as sent, or, for a descriptor
    inherited at process start, this process's own copy. A Pipe's two ends unpickle the same
    inherited reference: the second time, its descriptor is already closed and the object it names
    is already mapped (Segment.attach and SpillFile.attach look up the id first), so -1 is given."""
    if isinstance(reference, tuple):
        return reference
    if getattr(reference, "_shmproc_consumed", False):
        return (_os.getpid(), -1)
    reference._shmproc_consumed = True
    return (_os.getpid(), reference.detach())


cdef void close_if_inherited(object reference, object fd) noexcept:
    """After attaching through where_to_open: close this process's inherited copy, if it had one."""
    if not isinstance(reference, tuple) and fd >= 0:
        close(fd)


cdef int adopt_pipe_end(object reference, int mode) except -2:
    """This process's own descriptor for a notify pipe end; -1 if there is none to have (a write
    end nobody reads any more needs no signalling)."""
    if reference is None:
        return -1
    if not isinstance(reference, tuple):
        fd = reference.detach()
        _os.set_inheritable(fd, False)
        return fd
    pid, fd = reference
    try:
        return open_peer_fd(pid, fd, mode | _os.O_NONBLOCK, "a queue or connection")
    except FileNotFoundError as exc:
        if mode == _os.O_WRONLY and exc.errno == _errno.ENXIO:
            return -1
        raise
