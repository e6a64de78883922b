"""Contexts: one per start method, each carrying the whole API as methods (issue 4).

``get_context("spawn").Lock()`` and ``shmproc.Lock()`` are the same kind of call; the module-level
functions of ``shmproc`` are the bound methods of the default context, as in multiprocessing. The
contexts subclass multiprocessing's, so the parts shmproc does not change (cpu_count, logging,
set_executable, set_forkserver_preload, the exception classes) are the standard library's own
objects: ``except multiprocessing.TimeoutError`` catches shmproc's timeouts too.

The factory methods import their modules when first called: the primitives live in modules that
need the compiled core, and a program that only starts processes should not pay for them. A
factory whose shmproc module does not exist (managers, for now) uses multiprocessing's, which
works with shmproc's processes under every start method.
"""
import importlib
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

from shmproc import parent_death, process
from shmproc.process import ForkProcess, ForkServerProcess, Process, SpawnProcess

__all__ = [
    "AuthenticationError",
    "BaseContext",
    "BufferTooShort",
    "DefaultContext",
    "ForkContext",
    "ForkServerContext",
    "ProcessError",
    "SpawnContext",
    "TimeoutError",
    "assert_spawning",
    "get_spawning_popen",
    "set_spawning_popen",
]


def _shmproc_or_none(module_name):
    """shmproc's module, or None while it is not written yet (and only then: an import error
    inside an existing module is a bug to see, not to paper over)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None


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

    def _standard_library_context(self):
        return _mp_context._concrete_contexts[self.get_context()._name]

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
        return self._sharedctypes().RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        """Returns a shared array"""
        return self._sharedctypes().RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        """Returns a synchronized shared object"""
        return self._sharedctypes().Value(typecode_or_type, *args, lock=lock,
                                          ctx=self.get_context())

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        """Returns a synchronized shared array"""
        return self._sharedctypes().Array(typecode_or_type, size_or_initializer, lock=lock,
                                          ctx=self.get_context())

    def _sharedctypes(self):
        module = _shmproc_or_none("shmproc.sharedctypes")
        if module is None:
            from multiprocessing import sharedctypes as module
        return module

    # Queues, pipes, pools, managers: multiprocessing's where shmproc has none of its own.

    def Queue(self, maxsize=0):
        """Returns a queue object"""
        queues = _shmproc_or_none("shmproc.queues")
        if queues is None:
            return self._standard_library_context().Queue(maxsize)
        return queues.Queue(maxsize, ctx=self.get_context())

    def JoinableQueue(self, maxsize=0):
        """Returns a queue object"""
        queues = _shmproc_or_none("shmproc.queues")
        if queues is None:
            return self._standard_library_context().JoinableQueue(maxsize)
        return queues.JoinableQueue(maxsize, ctx=self.get_context())

    def SimpleQueue(self):
        """Returns a queue object"""
        queues = _shmproc_or_none("shmproc.queues")
        if queues is None:
            return self._standard_library_context().SimpleQueue()
        return queues.SimpleQueue(ctx=self.get_context())

    def Pipe(self, duplex=True):
        """Returns two connection object connected by a pipe"""
        connection = _shmproc_or_none("shmproc.connection")
        if connection is None:
            from multiprocessing import connection
        return connection.Pipe(duplex)

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, **options):
        """Returns a process pool object (options: retries, task_timeout, cluster; see
        shmproc.pool.Pool)"""
        from shmproc.pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild,
                    context=self.get_context(), **options)

    def Manager(self):
        """Returns a manager associated with a running server process"""
        managers = _shmproc_or_none("shmproc.managers")
        if managers is None:
            from multiprocessing import managers
        manager = managers.SyncManager(ctx=self.get_context())
        manager.start()
        return manager


class DefaultContext(_mp_context.DefaultContext, BaseContext):
    """The context behind the module-level functions: its start method can be set once."""
    Process = Process


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
_default_context = DefaultContext(_concrete_contexts[_mp_context._default_context._default_context._name])


def _force_start_method(method):
    """In a child: start its own children the way it was started, whatever its default."""
    _default_context._actual_context = _concrete_contexts[method]



if process._forced_start_method is not None:
    # This process was started with a method and imports the contexts only now.
    _force_start_method(process._forced_start_method)
