"""shmproc: multiprocessing, faster, on shared memory.

A drop-in for the `multiprocessing` API (``import shmproc as multiprocessing``) whose locks, events,
barriers, values, arrays and queues live in shared memory and wait on the Linux futex, plus what
multiprocessing lacks: lock-free atomic counters, batch queue calls and numpy arrays shared by
reference. Linux only (futex, O_TMPFILE/memfd, /proc).

As in multiprocessing, the module-level functions are the bound methods of the default context;
unlike it, each is named here, so that readers and type checkers can see them.
"""
import os as _os
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

# The compiled core is loaded on first use (a spawned child whose target uses no shared object never
# pays for it), but a package built without it must fail here, with a clear message: there is no
# pure-Python fallback.
if not any(_os.path.exists(_os.path.join(_os.path.dirname(__file__), "_core" + suffix))
           for suffix in _EXTENSION_SUFFIXES):
    raise ImportError(
        "shmproc's compiled core (shmproc._core) is missing: install shmproc with pip "
        "(`pip install -e .` in a checkout) so that the Cython extension is built"
    )

from threading import BrokenBarrierError

from shmproc import context as _context

# The first shmproc process of a tree names the tree for its keeper ($SHMPROC_KEEPER, set by
# keeper_client and inherited by every child, whatever the start method). A child has the name
# already, and imports keeper_client when it first needs it: a spawned pool worker never does.
if "SHMPROC_KEEPER" not in _os.environ:
    from shmproc import keeper_client as _keeper_client  # noqa: F401

from shmproc._version import __version__
from shmproc.context import AuthenticationError, BufferTooShort, Process, ProcessError, TimeoutError

# For type checkers only (mypy reads any name TYPE_CHECKING as true): at run time these names are
# made on first use by __getattr__ below. The flag itself is not left in the package.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from shmproc._core import OwnerDiedError
    from shmproc.ndarray import SharedNDArray, asshared, empty, zeros
del TYPE_CHECKING

_default_context = _context._default_context

# multiprocessing's public API, from the default context.
Array = _default_context.Array
Barrier = _default_context.Barrier
BoundedSemaphore = _default_context.BoundedSemaphore
Condition = _default_context.Condition
Event = _default_context.Event
JoinableQueue = _default_context.JoinableQueue
Lock = _default_context.Lock
Manager = _default_context.Manager
Pipe = _default_context.Pipe
Pool = _default_context.Pool
Queue = _default_context.Queue
RLock = _default_context.RLock
RawArray = _default_context.RawArray
RawValue = _default_context.RawValue
Semaphore = _default_context.Semaphore
SimpleQueue = _default_context.SimpleQueue
Value = _default_context.Value
active_children = _default_context.active_children
allow_connection_pickling = _default_context.allow_connection_pickling
cpu_count = _default_context.cpu_count
current_process = _default_context.current_process
freeze_support = _default_context.freeze_support
get_all_start_methods = _default_context.get_all_start_methods
get_context = _default_context.get_context
get_logger = _default_context.get_logger
get_start_method = _default_context.get_start_method
log_to_stderr = _default_context.log_to_stderr
parent_process = _default_context.parent_process
set_executable = _default_context.set_executable
set_forkserver_preload = _default_context.set_forkserver_preload
set_start_method = _default_context.set_start_method
set_parent_death_signal = _default_context.set_parent_death_signal
get_parent_death_signal = _default_context.get_parent_death_signal


_NDARRAY_NAMES = ("SharedNDArray", "asshared", "empty", "zeros")


def __getattr__(name):
    # multiprocessing.reducer is a property of the context (it can be replaced at run time).
    if name == "reducer":
        return _default_context.reducer
    # numpy is imported on first use: every spawned or fork-server child imports shmproc, and
    # numpy is most of that import's cost (~60 ms here).
    if name in _NDARRAY_NAMES:
        from shmproc import ndarray
        value = globals()[name] = getattr(ndarray, name)
        return value
    # multiprocessing.reduction is always there (its context imports it); so is ours, on first use.
    if name == "reduction":
        import importlib
        return importlib.import_module("shmproc.reduction")
    if name == "OwnerDiedError":
        from shmproc._core import OwnerDiedError
        globals()[name] = OwnerDiedError
        return OwnerDiedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # multiprocessing's names
    "Array", "AuthenticationError", "Barrier", "BoundedSemaphore", "BufferTooShort", "Condition",
    "Event", "JoinableQueue", "Lock", "Manager", "Pipe", "Pool", "Process", "ProcessError",
    "Queue", "RLock", "RawArray", "RawValue", "Semaphore", "SimpleQueue", "TimeoutError", "Value",
    "active_children", "allow_connection_pickling", "cpu_count", "current_process",
    "freeze_support", "get_all_start_methods", "get_context", "get_logger", "get_start_method",
    "log_to_stderr", "parent_process", "reducer", "set_executable", "set_forkserver_preload",
    "set_start_method",
    # shmproc's own
    "BrokenBarrierError", "OwnerDiedError", "SharedNDArray", "asshared", "empty", "zeros",
    "get_parent_death_signal", "set_parent_death_signal", "__version__",
]
