# handles: how a descriptor of this process reaches another process, and how that process opens it.
#
# A descriptor crosses a process boundary in one of two ways. While a process is being started
# (spawn, forkserver) it travels with the start itself (multiprocessing's reduction.DupFd), so the
# sender may close its copy as soon as start() returns. Otherwise it is named by (pid, fd, token):
# the receiver opens /proc/<pid>/fd/<fd> and checks the object's signature (a recycled descriptor
# fails it). A handle put into a shmproc queue or pipe also has its descriptor deposited with the
# tree's keeper under (pid, token) before the message is published (deposit_pending, called by the
# ring), so when the sender is gone the receiver fetches the keeper's copy instead; either way it
# then tells the keeper the handle was received. Every place that opens another process's
# descriptor goes through open_peer_fd, so a handle that cannot be attached fails with one error,
# whatever it names. The Python half (the keeper's client) is shmproc/keeper_client.py; the mechanism
# and its invariants are in docs/internals/handles.md.


from cpython.pythread cimport PyThread_get_thread_ident


# Per process being started: our descriptor -> the reference that passes it to the child.
_fds_passed_to_child = _weakref.WeakKeyDictionary()

# Handles pickled by this process so far; each one's token is the count when it was made. A ring
# compares it before and after pickling a message, so a message with no handle pays one compare.
cdef uint64_t handles_pickled = 0
cdef Py_ssize_t PENDING_KEPT = 1024
# This process told the keeper it received handles, and has not waited for the keeper to act on
# it: the keeper may still hold a Pipe's write end, so a reader must settle before it waits for EOF.
cdef bint releases_unsettled = False


# The thread now pickling a message that a shmproc ring will carry (0: none). A reference pickled
# there is deposited with the keeper by the ring, so it outlives its sender; a Connection pickled
# anywhere else carries duplicates of its descriptors instead, as multiprocessing's does
# (connection.py asks pickling_for_a_ring()). Only the pickle path of a put sets it.
cdef unsigned long ring_pickling_thread = 0


def pickling_for_a_ring():
    """True while this thread pickles a message for a shmproc queue or pipe."""
    return ring_pickling_thread != 0 and ring_pickling_thread == PyThread_get_thread_ident()


class _PendingHandles(_threading.local):
    # (token, fd) of handles this thread pickled and has not deposited: a ring deposits those of
    # the message it is putting; older ones (pickled for something else) are dropped.
    entries = None


_pending = _PendingHandles()


cdef object fd_reference(int fd, bint spawning):
    """How a descriptor of this process travels in a pickle: a DupFd while a process is being
    started, (pid, fd, token) otherwise; None for no descriptor."""
    global handles_pickled
    if fd < 0:
        return None
    if spawning:
        # A Pipe's two ends share one segment: pass each descriptor once per process start.
        shared = _fds_passed_to_child.setdefault(_mp_context.get_spawning_popen(), {})
        if fd not in shared:
            shared[fd] = _mp_reduction.DupFd(fd)
        return shared[fd]
    handles_pickled += 1
    entries = _pending.entries
    if entries is None:
        entries = _pending.entries = []
    elif len(entries) >= PENDING_KEPT:
        del entries[:PENDING_KEPT // 2]
    entries.append((handles_pickled, fd))
    return (<int>shm_current_pid(), fd, handles_pickled)


def handles_mark():
    """How many handles this process has pickled so far: pass it to deposit_handles_since() when
    a message's parts are pickled before the put."""
    return handles_pickled


cdef object _keeper_client = None


cdef inline bint is_spawning():
    return _mp_context.get_spawning_popen() is not None


cdef object keeper_client():
    """shmproc.keeper_client, imported on first use (it imports this extension)."""
    global _keeper_client
    if _keeper_client is None:
        from shmproc import keeper_client as module
        _keeper_client = module
    return _keeper_client


cdef int deposit_pending(uint64_t since, bytes ring, int ring_write_end, bint until_gone) except -1:
    """Deposit with the keeper the descriptors of the handles this thread pickled after `since`
    (the message about to be published), tied to the ring they travel in. Called by a ring before
    it publishes; the descriptors are open (the message being put holds their objects)."""
    entries = _pending.entries
    if not entries:
        return 0
    fresh = [entry for entry in entries if entry[0] > since]
    del entries[:]
    if fresh:
        keeper_client().deposit([token for token, _ in fresh], [fd for _, fd in fresh], ring,
                                   ring_write_end, until_gone)
    return 0


cdef tuple where_to_open(object reference):
    """(pid, fd, token) to open for a descriptor reference: as sent, or, for a descriptor inherited
    at process start, this process's own copy (token 0: nothing deposited). A Pipe's two ends
    unpickle the same inherited reference: the second time, its descriptor is already closed and
    the object it names is already mapped (Segment.attach and SpillFile.attach look up the id
    first), so -1 is given."""
    if isinstance(reference, tuple):
        return reference
    if getattr(reference, "_shmproc_consumed", False):
        return (_os.getpid(), -1, 0)
    reference._shmproc_consumed = True
    return (_os.getpid(), reference.detach(), 0)


cdef void close_if_inherited(object reference, object fd) noexcept:
    """After attaching through where_to_open: close this process's inherited copy, if it had one."""
    if not isinstance(reference, tuple) and fd >= 0:
        close(fd)


cdef int drop_reference(object reference) except -1:
    """A descriptor reference this process does not need (what it names is already open here):
    close the inherited copy, or tell the keeper the handle was received."""
    if reference is None:
        return 0
    pid, fd, token = where_to_open(reference)
    close_if_inherited(reference, fd)
    if token:
        release_handle(pid, token)
    return 0


cdef int release_handle(object pid, uint64_t token) except -1:
    global releases_unsettled
    keeper_client().release(pid, token)
    releases_unsettled = True
    return 0


cdef int settle_releases() except -1:
    """Wait until the keeper has acted on this process's releases (see releases_unsettled)."""
    global releases_unsettled
    releases_unsettled = False
    keeper_client().settle()
    return 0


cdef int open_peer_fd(object reference, int flags, str what, bytes signature=None,
                      object inode=None) except -1:
    """This process's own descriptor (close-on-exec) for a descriptor reference, checked to start
    with signature, or to be inode, if one is given. Opened through the sender's /proc entry while
    the sender holds it, else fetched from the keeper; a deposited handle is then released.
    FileNotFoundError, keeping the errno, if neither has it."""
    pid, fd, token = where_to_open(reference)
    cdef int own = -1
    err = _errno.ENOENT
    try:
        try:
            own = _os.open(f"/proc/{pid}/fd/{fd}", flags | _os.O_CLOEXEC)
        except OSError as exc:
            err = exc.errno
        if own >= 0 and not is_expected(own, signature, inode):
            close(own)              # the sender's descriptor was recycled for something else
            own = -1
    finally:
        close_if_inherited(reference, fd)
    if token:
        if own >= 0:
            release_handle(pid, token)
        else:
            own = keeper_client().fetch(pid, token)
            if own >= 0 and not is_expected(own, signature, inode):
                close(own)
                own = -1
    if own < 0:
        raise FileNotFoundError(
            err, f"cannot attach {what}: process {pid}, which sent its handle, has exited or "
                 f"closed it, and no keeper holds it (only a handle sent through a shmproc queue or "
                 f"pipe outlives its sender, and it is received once)")
    return own


cdef bint is_expected(int fd, bytes signature, object inode) except -1:
    if signature is not None and _os.pread(fd, len(signature), 0) != signature:
        return False
    return inode is None or _os.fstat(fd).st_ino == inode


cdef int adopt_notify_end(object reference, int mode, bint is_socket, object inode) except -2:
    """This process's own descriptor for a ring's notify pipe end or socket; -1 if there is none to
    have (a pipe's write end nobody reads any more needs no signalling). A socket cannot be opened
    through /proc (ENXIO): it comes with the process start or from the keeper's copy."""
    if reference is None:
        return -1
    if not isinstance(reference, tuple):
        fd = reference.detach()
        _os.set_inheritable(fd, False)
        return fd
    try:
        return open_peer_fd(reference, mode | (0 if is_socket else _os.O_NONBLOCK),
                            "a queue or connection", None, inode)
    except FileNotFoundError as exc:
        # Opening a pipe's write end without a reader left fails with ENXIO; a socket always does.
        if mode == _os.O_WRONLY and exc.errno == _errno.ENXIO and not is_socket:
            return -1
        raise
