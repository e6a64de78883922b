"""Contexts: one per start method, each carrying the whole API as methods.

``get_context("spawn").Lock()`` and ``shmproc.Lock()`` are the same kind of call; the module-level
functions of ``shmproc`` are the bound methods of the default context, as in multiprocessing. The
contexts subclass multiprocessing's, so the parts shmproc does not change (cpu_count, logging,
set_executable, set_forkserver_preload, the exception classes) are the standard library's own
objects: ``except multiprocessing.TimeoutError`` catches shmproc's timeouts too.

The factory methods import their modules when first called: the primitives live in modules that
need the compiled core, and a program that only starts processes should not pay for them. The
pool (shmproc.pool) and the managers (shmproc.managers) are shmproc's own.

The Process class of each start method is here too, as in multiprocessing, each importing its
popen_* module only when it starts a process: process.py then needs nothing from this module at
import time, and the modules import one another in one direction only.
"""
from multiprocessing import context as _mp_context
from multiprocessing.context import (
    AuthenticationError,
    BufferTooShort,
    ProcessError,
    TimeoutError,
    assert_spawning,
    get_spawning_popen,
    set_spawning_popen,
)

from shmproc import _compat, parent_death
from shmproc.process import BaseProcess

__all__ = [
    "AuthenticationError",
    "BaseContext",
    "BufferTooShort",
    "DefaultContext",
    "ForkContext",
    "ForkProcess",
    "ForkServerContext",
    "ForkServerProcess",
    "Process",
    "ProcessError",
    "SpawnContext",
    "SpawnProcess",
    "TimeoutError",
    "assert_spawning",
    "get_spawning_popen",
    "set_spawning_popen",
]


class BaseContext(_mp_context.BaseContext):

    set_parent_death_signal = staticmethod(parent_death.set_parent_death_signal)
    get_parent_death_signal = staticmethod(parent_death.get_parent_death_signal)

    def get_context(self, method=None):
        if method is None:
            return self
        try:
            ctx = _concrete_contexts[method]
        except KeyError:
            raise ValueError(f"cannot find context for {method!r}") from None
        ctx._check_available()
        return ctx

    # Synchronization primitives: the futex-based ones of the compiled core.

    def Lock(self):
        """Returns a non-recursive lock object"""
        from shmproc.synchronize import Lock
        return Lock()

    def RLock(self):
        """Returns a recursive lock object"""
        from shmproc.synchronize import RLock
        return RLock()

    def Condition(self, lock=None):
        """Returns a condition object"""
        from shmproc.synchronize import Condition
        return Condition(lock)

    def Semaphore(self, value=1):
        """Returns a semaphore object"""
        from shmproc.synchronize import Semaphore
        return Semaphore(value)

    def BoundedSemaphore(self, value=1):
        """Returns a bounded semaphore object"""
        from shmproc.synchronize import BoundedSemaphore
        return BoundedSemaphore(value)

    def Event(self):
        """Returns an event object"""
        from shmproc.synchronize import Event
        return Event()

    def Barrier(self, parties, action=None, timeout=None):
        """Returns a barrier object"""
        from shmproc.synchronize import Barrier
        return Barrier(parties, action, timeout)

    # Shared memory objects.

    def RawValue(self, typecode_or_type, *args):
        """Returns a shared object"""
        from shmproc import sharedctypes
        return sharedctypes.RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        """Returns a shared array"""
        from shmproc import sharedctypes
        return sharedctypes.RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        """Returns a synchronized shared object"""
        from shmproc import sharedctypes
        return sharedctypes.Value(typecode_or_type, *args, lock=lock, ctx=self.get_context())

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        """Returns a synchronized shared array"""
        from shmproc import sharedctypes
        return sharedctypes.Array(typecode_or_type, size_or_initializer, lock=lock,
                                  ctx=self.get_context())

    # Queues and pipes: the shared-memory rings of the compiled core.

    def Queue(self, maxsize=0):
        """Returns a queue object"""
        from shmproc import queues
        return queues.Queue(maxsize, ctx=self.get_context())

    def JoinableQueue(self, maxsize=0):
        """Returns a queue object"""
        from shmproc import queues
        return queues.JoinableQueue(maxsize, ctx=self.get_context())

    def SimpleQueue(self):
        """Returns a queue object"""
        from shmproc import queues
        return queues.SimpleQueue(ctx=self.get_context())

    def Pipe(self, duplex=True):
        """Returns two connection object connected by a pipe"""
        from shmproc import connection
        return connection.Pipe(duplex)

    # Pools and managers: shmproc's own.

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, **options):
        """Returns a process pool object (options: retries, task_timeout, cluster; see
        shmproc.pool.Pool)"""
        from shmproc.pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild,
                    context=self.get_context(), **options)

    def Manager(self):
        """Returns a manager associated with a running server process"""
        from shmproc.managers import SyncManager
        manager = SyncManager(ctx=self.get_context())
        manager.start()
        return manager


#
# One Process class per start method, and the default one that follows set_start_method().
#

class ForkProcess(BaseProcess):
    _start_method = "fork"

    @staticmethod
    def _Popen(process_obj):
        from shmproc.popen_fork import Popen
        return Popen(process_obj)


class SpawnProcess(BaseProcess):
    _start_method = "spawn"

    @staticmethod
    def _Popen(process_obj):
        from shmproc.popen_spawn_posix import Popen
        return Popen(process_obj)

    @staticmethod
    def _after_fork():
        # A fresh interpreter: no inherited finalizers or after-fork hooks to run.
        pass


class ForkServerProcess(BaseProcess):
    _start_method = "forkserver"

    @staticmethod
    def _Popen(process_obj):
        from shmproc.popen_forkserver import Popen
        return Popen(process_obj)


class Process(BaseProcess):
    """Process(group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None)

    Runs ``target(*args, **kwargs)`` (or an overridden ``run()``) in a child process started with
    the current default start method (``shmproc.set_start_method``)."""
    _start_method = None

    @staticmethod
    def _Popen(process_obj):
        actual = _default_context.get_context()
        # The child forces its own default start method to this one (under spawn it would
        # otherwise start again from the platform's default).
        process_obj._start_method = actual._name
        return actual.Process._Popen(process_obj)

    def _after_fork(self):
        if self._start_method != "spawn":
            BaseProcess._after_fork()


class DefaultContext(_mp_context.DefaultContext, BaseContext):
    """The context behind the module-level functions: its start method can be set once."""
    Process = Process  # type: ignore[assignment]  # shmproc's, a subclass of BaseProcess


class ForkContext(BaseContext):
    _name = "fork"
    Process = ForkProcess


class SpawnContext(BaseContext):
    _name = "spawn"
    Process = SpawnProcess


class ForkServerContext(BaseContext):
    _name = "forkserver"
    Process = ForkServerProcess

    def _check_available(self):
        if not _mp_context.reduction.HAVE_SEND_HANDLE:
            raise ValueError("forkserver start method not available")


_concrete_contexts = {
    "fork": ForkContext(),
    "spawn": SpawnContext(),
    "forkserver": ForkServerContext(),
}
# The standard library's default for this platform and Python version (fork on Linux up to 3.13).
_default_context = DefaultContext(_concrete_contexts[_compat.standard_default_start_method()])


def _force_start_method(method):
    """In a child: start its own children the way it was started, whatever its default."""
    _compat.choose_context(_default_context, _concrete_contexts[method])


def _chosen_start_method():
    """The start method the default context has settled on, or None while none is chosen."""
    chosen = _compat.chosen_context(_default_context)
    return None if chosen is None else chosen._name
