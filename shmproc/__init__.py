"""shmproc: multiprocessing, faster, on shared memory.

A drop-in for the `multiprocessing` API (``import shmproc as multiprocessing``) whose locks, events,
barriers, values and arrays live in shared memory and wait on the Linux futex, plus what
multiprocessing lacks: lock-free atomic counters and numpy arrays shared by reference.
Linux only (futex, O_TMPFILE/memfd, /proc).
"""
try:
    from shmproc import _core
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "shmproc's compiled core (shmproc._core) is missing or failed to load: install shmproc with "
        "pip (`pip install -e .` in a checkout) so that the Cython extension is built; "
        f"the import failed with: {exc}"
    ) from exc

from shmproc._version import __version__
from shmproc._core import BrokenBarrierError, OwnerDiedError
from shmproc.synchronize import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
)

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "Event",
    "Lock",
    "OwnerDiedError",
    "RLock",
    "Semaphore",
    "__version__",
]
