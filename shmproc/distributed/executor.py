"""ClusterExecutor: shmproc.futures.ProcessPoolExecutor's API, its calls run on a Dask cluster.

It is the local executor with another engine (engine.py, shared with ClusterPool): submit() calls
that queue up go out together as one Dask task, map() is cut into batches sized from the tasks'
measured time. Futures are standard concurrent.futures ones; a task lost with its workers, or
with the scheduler, fails its future with a BrokenProcessPool (shmproc.futures.BrokenWorkerError,
the cause in its message). ``ProcessPoolExecutor(..., cluster=X)`` returns one.
"""
import threading

from shmproc.distributed.engine import ClusterEngine
from shmproc.futures import ProcessPoolExecutor

__all__ = ["ClusterExecutor"]


class ClusterExecutor(ProcessPoolExecutor):
    """An executor on a Dask cluster; ``cluster``, ``security`` and ``insecure`` as for
    ClusterPool. ``max_workers`` sizes only a ``"local"`` cluster; ``max_tasks_per_child`` and
    ``task_timeout`` are not supported."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, max_workers=None, initializer=None, initargs=(), max_tasks_per_child=None,
                 *, cluster, mp_context=None, retries=0, task_timeout=None, security=None,
                 insecure=False):
        if getattr(self, "_engine", None) is not None:
            return     # ProcessPoolExecutor(cluster=...) made this one; Python calls __init__ again
        self._engine = None
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if max_tasks_per_child is not None:
            raise ValueError("max_tasks_per_child is not supported with cluster= (Dask workers "
                             "are long-lived)")
        if task_timeout is not None:
            raise ValueError("task_timeout is not supported with cluster= (a Dask worker cannot "
                             "stop one task without stopping the others)")
        self._task_timeout = None
        self._shutdown_lock = threading.Lock()
        self._future_lock = threading.RLock()      # shared by this executor's futures
        self._shutdown = False
        engine = ClusterEngine.start(cluster, max_workers, initializer, initargs, retries, security,
                                     insecure)
        self._cluster_engine = engine
        self._engine = engine            # the local engine's interface, on Dask
        self._max_workers = engine._threads

    @property
    def client(self):
        """The distributed.Client the executor's tasks go through."""
        return self._cluster_engine.client
