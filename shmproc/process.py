"""Process: a thread-like object that runs its target in a child process.

It is multiprocessing's BaseProcess with a leaner child-side bootstrap, a parent-death signal, and
errors that do not depend on ``assert`` (so they survive ``python -O``). Subclassing the standard
library's class keeps everything that reads multiprocessing's process table consistent:
``multiprocessing.current_process()``, ``parent_process()``, ``active_children()``, process names,
the authkey, and multiprocessing.util's finalizers and at-exit join of non-daemonic children.

The Process class of each start method is in context.py, as in multiprocessing: this module imports
nothing of shmproc's at module level but parent_death and _compat, which import only the standard
library.
"""
import itertools
import os
import signal
import sys
from multiprocessing import process as _mp_process
from multiprocessing import util
from multiprocessing.process import (
    AuthenticationString,
    active_children,
    current_process,
    parent_process,
)

from shmproc import _compat, parent_death

__all__ = [
    "BaseProcess",
    "ProcessStateError",
    "active_children",
    "current_process",
    "parent_process",
]


class ProcessStateError(RuntimeError, AssertionError):
    """A Process method called in a state that does not allow it (started twice, joined before
    start...). multiprocessing raises AssertionError here (and nothing at all under ``python -O``);
    this is also an AssertionError, so code written for multiprocessing still catches it."""


class BaseProcess(_mp_process.BaseProcess):
    # How the child learns of its parent's death; set by the Popen in the parent just before start.
    _parent_death = None

    # Whether _config is this object's own dict yet (see __init__).
    _config_is_private = False

    def __init__(self, group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None):  # noqa: B006 - multiprocessing's signature, never mutated
        # multiprocessing's, minus what a process that is only started and joined never needs
        # (on the fork path every object made costs pages, docs/process.md): no registration in
        # the debugging WeakSet ``_dangling`` (only CPython's own test suite reads it), the
        # parent's configuration shared until this process writes to its own (daemon, authkey),
        # and the default name made when first asked for.
        if group is not None:
            raise ValueError("group argument must be None for now")
        current = current_process()
        self._identity = current._identity + (_compat.next_child_number(),)
        self._config = current._config
        self._parent_pid = os.getpid()
        self._parent_name = current._name
        self._popen = None
        self._closed = False
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        if name:
            self._name = name
        if daemon is not None:
            self.daemon = daemon

    def __getattr__(self, attribute):
        # Only for attributes missing from the instance: the default name, made on first use.
        if attribute == "_name":
            identity = self.__dict__.get("_identity")
            if identity is not None:
                name = self._name = f"{type(self).__name__}-{':'.join(map(str, identity))}"
                return name
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")

    def _private_config(self):
        if not self._config_is_private:
            self._config = self._config.copy()
            self._config_is_private = True
        return self._config

    @property
    def daemon(self):
        """Whether the process is daemonic (terminated, not joined, when its parent exits)."""
        return self._config.get("daemon", False)

    @daemon.setter
    def daemon(self, daemonic):
        if self._popen is not None:
            raise ProcessStateError("process has already started")
        self._private_config()["daemon"] = daemonic

    @property
    def authkey(self):
        return self._config["authkey"]

    @authkey.setter
    def authkey(self, authkey):
        self._private_config()["authkey"] = AuthenticationString(authkey)

    def start(self):
        """Start the child process."""
        # multiprocessing's, with checks that do not vanish under ``python -O``.
        if self._closed:
            raise ValueError("process object is closed")
        if self._popen is not None:
            raise ProcessStateError("cannot start a process twice")
        if self._parent_pid != os.getpid():
            raise ProcessStateError("can only start a process object created by current process")
        if current_process()._config.get("daemon"):
            raise ProcessStateError("daemonic processes are not allowed to have children")
        _compat.reap_finished_children()
        self._popen = self._Popen(self)
        # As multiprocessing does: no reference cycle through a target that refers to its process.
        del self._target, self._args, self._kwargs
        _compat.children().add(self)

    @property
    def sentinel(self):
        """A descriptor that becomes readable when the process ends (for
        multiprocessing.connection.wait, select...)."""
        # Asked of the Popen each time rather than copied at start: the fork Popen opens it
        # only when asked.
        self._check_closed()
        if self._popen is None:
            raise ValueError("process not started")
        return self._popen.sentinel

    def close(self):
        """Release the resources of a process that has ended (its sentinel)."""
        if self._popen is not None:
            if self._popen.poll() is None:
                raise ValueError("Cannot close a process while it is still running. "
                                 "You should first call join() or terminate().")
            self._popen.close()
            self._popen = None
            _compat.children().discard(self)
        self._closed = True

    def join(self, timeout=None):
        """Wait until the child process ends, or until ``timeout`` seconds have passed."""
        if self._closed:
            raise ValueError("process object is closed")
        if self._parent_pid != os.getpid():
            raise ProcessStateError("can only join a child process")
        if self._popen is None:
            raise ProcessStateError("can only join a started process")
        if self._popen.wait(timeout) is not None:
            _compat.children().discard(self)

    def _bootstrap(self, parent_sentinel=None, inherited=None):
        # multiprocessing.process.BaseProcess._bootstrap, leaner, plus the parent-death signal.
        # Runs in the child. After fork, each page the child writes to is first copied (a few
        # microseconds each here), and touching an object writes to it (its reference count): so
        # steps with nothing to do are skipped, and under fork the parent hands over ready-made
        # objects (``inherited``, see ForkInheritance) instead of the child building them.
        try:
            if inherited is None:
                # Not the fork path, which arms the parent-death signal itself, right after fork.
                parent_death.arm(self, self._parent_death, parent_sentinel)
                inherited = ForkInheritance(self._parent_name, self._parent_pid, parent_sentinel)
            if self._start_method is not None and inherited.start_method != self._start_method:
                # Imported already: under fork inherited, else by unpickling this process object,
                # whose class is defined there.
                from shmproc import context
                context._force_start_method(self._start_method)
            # The replaced objects stay referenced from ``inherited``: freeing them in the child
            # would write to their pages (and multiprocessing finalizes the old process object
            # only after the after-fork hooks anyway; none of them has a finalizer).
            inherited.previous_state = _compat.install_process_state(
                self, inherited.parent, inherited.process_counter, inherited.children)
            if sys.stdin is not None and sys.stdin is not inherited.stdin is not None:
                # multiprocessing also closes the old sys.stdin; that costs a tenth of a fork.
                sys.stdin = inherited.stdin
            _compat.set_main_thread_native_id()
            self._after_fork()
            if _compat.logging_enabled():
                util.info("child process calling self.run()")
            try:
                self.run()
                exitcode = 0
            finally:
                _compat.run_exit_functions()
        except SystemExit as exc:
            exitcode = _exit_status(exc.code)
        except:  # noqa: E722 - like multiprocessing, anything escaping run() is reported
            exitcode = 1
            import traceback
            sys.stderr.write(f"Process {self.name}:\n")
            traceback.print_exc()
        finally:
            _compat.join_threads_at_exit()
            if _compat.logging_enabled():
                util.info(f"process exiting with exitcode {exitcode}")
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except (AttributeError, ValueError):
                _compat.flush_std_streams()
        return exitcode

    # multiprocessing's, skipping the registries that are empty.
    _after_fork = staticmethod(_compat.run_after_fork_hooks)


def _exit_status(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(str(code) + "\n")
    return 1


class ForkInheritance:
    """The fresh per-process state a new child installs in multiprocessing.process: its parent's
    process object, an empty children set, a process counter at 1, and a stdin reading /dev/null.

    The fork path builds one in the parent and reuses it for every child (see
    inheritance_for_fork): the parent never uses these objects, so each forked child finds them
    pristine in its copy of memory and only has to install them. (Building a /dev/null stream
    alone costs a quarter of a fork.) The other start methods build one in the child."""

    __slots__ = ("pid", "name", "sentinel", "parent", "process_counter", "children", "stdin",
                 "stdin_fd", "start_method", "previous_state")

    def __init__(self, parent_name, parent_pid, sentinel, stdin=None):
        # The start method the child's default context already has (None: to be forced).
        self.start_method = None
        self.previous_state = None
        self.pid = os.getpid()
        self.name = parent_name
        self.sentinel = sentinel
        self.parent = _compat.ParentProcess(parent_name, parent_pid, sentinel)
        self.process_counter = itertools.count(1)
        self.children = set()
        if stdin is None:
            try:
                # closefd=False: if code closes the descriptor behind our back and the number is
                # reused, dropping this stream must not close someone else's file.
                stdin = open(os.open(os.devnull, os.O_RDONLY), encoding="utf-8", closefd=False)
            except OSError:
                pass
        self.stdin = stdin
        self.stdin_fd = None if stdin is None else stdin.fileno()


_fork_inheritance = None


def inheritance_for_fork(start_method):
    """The ForkInheritance for the next forked child of this process; its sentinel (for the
    child's parent_process()) is this process's own pidfd, None where there are no pidfds.
    ``start_method`` is the one this process's default context has settled on (None: not yet).

    It is reused while this process's name stays the same and its two descriptors are still what
    they were: code that closes descriptors it does not own (daemonizing, say) must not hand a
    child some other file as its stdin. The check costs two system calls."""
    global _fork_inheritance
    inherited = _fork_inheritance
    name = current_process()._name
    pid = os.getpid()
    if inherited is None or inherited.pid != pid or not _descriptors_intact(inherited):
        try:
            own_pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            own_pidfd = None
        inherited = _fork_inheritance = ForkInheritance(name, pid, own_pidfd)
    elif inherited.name != name:
        # The same descriptors under a new parent process object.
        inherited = _fork_inheritance = ForkInheritance(name, pid, inherited.sentinel,
                                                        inherited.stdin)
    inherited.start_method = start_method
    return inherited


def _descriptors_intact(inherited):
    # Neither call allocates (an os.fstat() result would: on this path every object counts).
    try:
        # /dev/null reads nothing at any offset; a pipe, socket or terminal refuses pread(),
        # and a file, unless empty, returns its first byte (without moving its offset).
        if inherited.stdin_fd is not None and os.pread(inherited.stdin_fd, 1, 0) != b"":
            return False
        if inherited.sentinel is not None:
            # Signal 0 checks only that the descriptor is a pidfd of a live process.
            signal.pidfd_send_signal(inherited.sentinel, 0)
    except OSError:
        return False
    return True
