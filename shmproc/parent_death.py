"""What a child does when its parent is killed: by default it is killed too (issue 4).

multiprocessing leaves the children of a SIGKILLed parent running forever. shmproc arms, in every
child it starts, a signal the child receives when its parent dies:

- ``prctl(PR_SET_PDEATHSIG)`` when the operating-system parent is the parent process itself and the
  thread that started the child is its main thread. The kernel sends the signal when the *thread*
  that forked exits, not the process; a Python main thread only ends together with its process, so
  this is exact, and it costs one system call.
- otherwise (started from another thread, whose end must not kill the child; or through the
  forkserver, which is the child's parent at the operating-system level) a daemon thread in the child
  waits on a descriptor of the parent (a pidfd, or the parent's sentinel where there is no pidfd)
  and signals the child when it becomes readable.

``set_parent_death_signal(None)`` opts out, for the processes started afterwards by this process and,
through them, by their descendants.
"""
import os
import signal
import threading

__all__ = ["get_parent_death_signal", "set_parent_death_signal"]

# What the child of this process receives when this process dies; None: nothing.
_parent_death_signal = signal.SIGKILL

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum):
    """Set the signal that processes started from now on receive when this process dies.

    ``None`` turns the behaviour off (children outlive a killed parent, as with multiprocessing).
    The setting is inherited: a child passes it on to the processes it starts.
    """
    global _parent_death_signal
    if signum is not None:
        signum = signal.Signals(signum)
    _parent_death_signal = signum


def get_parent_death_signal():
    """The signal set by set_parent_death_signal(), or None when turned off."""
    return _parent_death_signal


def plan(start_method):
    """How a child about to be started will learn of its parent's death: (signal, mode).

    Runs in the parent, in the thread that starts the child; the result travels with the process
    object (pickled under spawn and forkserver) and is carried out by arm() in the child.
    """
    signum = _parent_death_signal
    if signum is None:
        return None
    if start_method != "forkserver" and _in_main_thread():
        # Built before fork, so that a forked child finds the call ready.
        return _prctl_call(signum)[0]
    return (signum, "watch")


def arm(process, plan, parent_sentinel):
    """In a new child: make it receive the planned signal when its parent dies."""
    global _parent_death_signal
    if plan is None:
        _parent_death_signal = None
        return
    signum, mode = plan
    if _parent_death_signal is not signum:
        # A child passes its parent's setting on to its own children.
        _parent_death_signal = signum
    if mode == "prctl":
        _, prctl, arguments = _prctl_call(signum)
        if prctl(*arguments) == 0:
            # The parent may have died before the prctl call: then we are already orphaned
            # (reparented to init or a subreaper) and no signal will ever come.
            if os.getppid() != process._parent_pid:
                os.kill(os.getpid(), signum)
            return
    _start_watcher(signum, _parent_descriptor(process._parent_pid, parent_sentinel))


# (plan, prctl function, its arguments) for the signal last asked for: a forked child runs the
# call ready-made, since each object it touches costs it a copied page (docs/process.md).
_prepared_prctl = None


def _prctl_call(signum):
    global _prepared_prctl
    prepared = _prepared_prctl
    if prepared is None or prepared[0][0] is not signum:
        import ctypes
        prctl = ctypes.CDLL(None).prctl
        arguments = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signum))
        prepared = _prepared_prctl = ((signum, "prctl"), prctl, arguments)
    return prepared


# (pid, ident of that process's main thread): a child forked from another thread has that thread
# as its main thread, so the pid says whether the cached ident is still right.
_main_thread_key = (None, None)


def _in_main_thread():
    global _main_thread_key
    key = _main_thread_key
    if key[0] != os.getpid():
        key = _main_thread_key = (os.getpid(), threading.main_thread().ident)
    return threading.get_ident() == key[1]


def _parent_descriptor(parent_pid, parent_sentinel):
    """A descriptor that becomes readable when the parent dies."""
    try:
        pidfd = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):
        return parent_sentinel
    # The pid may belong to another process already if the parent died just now: the parent's own
    # sentinel (which this child holds open) says whether it is still alive.
    if parent_sentinel is not None and _readable(parent_sentinel, 0):
        os.close(pidfd)
        return None
    return pidfd


def _readable(fd, timeout_ms):
    import select
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


def _start_watcher(signum, fd):
    if fd is None:
        os.kill(os.getpid(), signum)
        return

    def watch():
        try:
            while not _readable(fd, None):
                pass
        except OSError:
            return
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, name="shmproc-parent-death-watcher", daemon=True).start()
