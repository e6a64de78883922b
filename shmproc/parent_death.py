"""What a child does when its parent is killed: a daemonic child is killed too.

multiprocessing ends a process's daemonic children when the process exits, but leaves them running
forever when it is killed (SIGKILL, the OOM killer, a crash). shmproc keeps that promise in every
case: it arms, in every daemonic child it starts (Pool and executor workers are daemonic), a signal
the child receives when its parent dies. A non-daemonic child outlives a killed parent, as in
multiprocessing (its ``parent_process()`` then reports the death); ``set_parent_death_signal(signum,
daemonic_only=False)`` arms every child (the manager's server process is started that way). The
signal is armed in one of two ways:

- "prctl": ``prctl(PR_SET_PDEATHSIG)``, set by the kernel, exact and free once set. Used for a
  forked child when the thread that starts it is the main thread: the kernel sends the signal when
  the *thread* that forked ends, not the process, and a Python main thread only ends with its
  process. The call is made through the compiled core's ``set_parent_death_signal`` if it has
  one, else through ctypes, prepared in the parent so that a forked child finds it ready.
  A spawned child started from the main thread uses it too when that is cheap there: when the
  core offers the function or ctypes is loaded already.
- "watch": a thread in the child, started with ``_thread`` (invisible to threading.enumerate(),
  and nothing to join), sleeps in poll() on a pidfd of the parent and signals the child when the
  parent has ended. Used when the child was started from another thread (whose end must not kill
  the child), through the fork server (the child's parent at the operating-system level), and
  by a spawned child that would have to import ctypes (that costs more than the thread). It needs
  the interpreter to take the GIL back within the switch interval, which it does unless the main
  thread sits in C code that holds the GIL.

``set_parent_death_signal(None)`` opts out, for the processes started afterwards by this process
and, through them, by their descendants (a child inherits its parent's signal; ``daemonic_only``
is each process's own and starts True).
"""
import os
import signal
import sys
import threading

__all__ = ["get_parent_death_signal", "set_parent_death_signal"]

# What the children of this process receive when this process dies; None: nothing.
_parent_death_signal: "signal.Signals | None" = signal.SIGKILL
# Whether only daemonic children receive it (multiprocessing's promise for those, kept even when this
# process is killed); False: every child.
_daemonic_only = True

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum, daemonic_only=True):
    """Set the signal that processes started from now on receive when this process dies: the
    daemonic ones, or every one if ``daemonic_only`` is false.

    ``None`` turns the behaviour off (children outlive a killed parent, as with multiprocessing).
    The signal is inherited: a child passes it on to the processes it starts.
    """
    global _parent_death_signal, _daemonic_only
    if signum is not None:
        signum = signal.Signals(signum)
    _parent_death_signal = signum
    _daemonic_only = bool(daemonic_only)


def get_parent_death_signal():
    """The signal set by set_parent_death_signal(), or None when turned off."""
    return _parent_death_signal


def get_daemonic_only():
    """Whether only daemonic children receive the signal (set_parent_death_signal)."""
    return _daemonic_only


def plan(start_method, process_obj):
    """How a child about to be started will learn of its parent's death: (signal, mode), or None.

    Runs in the parent, in the thread that starts the child; the result travels with the process
    object (pickled under spawn and forkserver) and is carried out by arm() in the child. The mode
    "pass on" arms nothing: the child only passes the signal on to its own children.
    """
    signum = _parent_death_signal
    if signum is None:
        return None
    if _daemonic_only and not process_obj.daemon:
        return (signum, "pass on")
    if start_method == "fork" and _in_main_thread():
        # Prepared before fork, so that a forked child finds the call ready.
        return _prepared_prctl(signum)[0]
    if start_method == "spawn" and _in_main_thread():
        # The child decides (arm): prctl where that is cheap there, else the watcher thread.
        return (signum, "prctl if cheap")
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
    if mode == "pass on":
        return
    parent_pid = process._parent_pid
    if mode == "prctl if cheap":
        # A fresh interpreter: prctl if the core is loaded already (the target's arguments hold
        # shared objects) or ctypes is; else a watcher thread, cheaper than loading either.
        mode = "prctl" if _core_prctl() is not None or "ctypes" in sys.modules else "watch"
    if mode == "prctl":
        prctl, arguments = _prepared_prctl(signum)[1]
        if prctl(*arguments) == 0:
            # The parent may have died before the prctl call: then we are already orphaned
            # (reparented to init or a subreaper) and no signal will ever come.
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signum)
            return
    descriptor = _parent_descriptor(parent_pid, parent_sentinel)
    if descriptor is None:
        os.kill(os.getpid(), signum)
    else:
        import _thread
        _thread.start_new_thread(_watch, (descriptor, signum))


def plan_fork(process_obj):
    """plan("fork", process_obj), and with a "prctl" plan the (function, arguments) making the call:
    the fork path makes it itself in the child, right after fork(), with what is at hand."""
    signum = _parent_death_signal
    if signum is None:
        return None, None
    if _daemonic_only and not process_obj.daemon:
        return (signum, "pass on"), None
    if _in_main_thread():
        prepared = _prepared_prctl(signum)
        return prepared[0], prepared[1]
    return (signum, "watch"), None


# ((signal, "prctl"), (function, arguments)) for the signal last asked for: a forked child makes the
# call ready-made, since each object it has to touch costs it a copied page (docs/process.md).
_prepared: "tuple | None" = None


def _prepared_prctl(signum):
    global _prepared
    prepared = _prepared
    if prepared is None or prepared[0][0] is not signum:
        core_function = _core_prctl(load=True)
        if core_function is not None:
            prepared = ((signum, "prctl"), (core_function, (int(signum),)))
        else:
            import ctypes
            prctl = ctypes.CDLL(None).prctl
            arguments = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signum))
            prepared = ((signum, "prctl"), (prctl, arguments))
        _prepared = prepared
    return prepared


def _core_prctl(load=False):
    """The compiled core's prctl(PR_SET_PDEATHSIG, signal) -> 0 on success. Unless asked to load
    it, only if the core is loaded already: a freshly spawned child does not load the extension
    just for this (a watcher thread is cheaper)."""
    core = sys.modules.get("shmproc._core")
    if core is None and load:
        from shmproc import _core as core
    return getattr(core, "set_parent_death_signal", None)


# (pid, ident of that process's main thread): a child forked from another thread has that thread
# as its main thread, so the pid says whether the cached ident is still right.
_main_thread_key: "tuple[int | None, int | None]" = (None, None)


def _in_main_thread():
    global _main_thread_key
    key = _main_thread_key
    if key[0] != os.getpid():
        key = _main_thread_key = (os.getpid(), threading.main_thread().ident)
    return threading.get_ident() == key[1]


def _parent_descriptor(parent_pid, parent_sentinel):
    """A descriptor that becomes readable when the parent has ended; None if it already has."""
    try:
        pidfd = os.pidfd_open(parent_pid)
    except ProcessLookupError:
        return None
    except (AttributeError, OSError):
        return parent_sentinel
    if os.getppid() == parent_pid:
        # Our parent at the operating-system level cannot have been replaced under its pid.
        return pidfd
    # Started through the fork server: the pid may name another process already if the parent
    # died just now. The parent's sentinel, which this child holds, tells.
    if parent_sentinel is not None and _readable(parent_sentinel, 0):
        os.close(pidfd)
        return None
    return pidfd


def _readable(fd, timeout_ms):
    import select
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


def _watch(descriptor, signum):
    try:
        while not _readable(descriptor, None):
            pass
    except (OSError, ValueError):
        return
    os.kill(os.getpid(), signum)
