"""Synchronization primitives shared between threads and processes.

The classes are the Cython core's own types: their acquire/release and ``with`` paths are C calls
with no Python frame in between. They pickle (for any start method, and through queues) as a handle
to their shared state.
"""
from shmproc._core import (
    SEMAPHORE_VALUE_MAX,
    Barrier,
    BoundedSemaphore,
    BrokenBarrierError,
    Condition,
    Event,
    Lock,
    OwnerDiedError,
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
    "SEMAPHORE_VALUE_MAX",
    "Semaphore",
]
