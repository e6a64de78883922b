"""ClusterExecutor: shmproc.futures.ProcessPoolExecutor's API, its calls run on a Dask cluster.

It is the local executor with another engine (engine.py, shared with ClusterPool): submit() calls
that queue up go out together as one Dask task, map() is cut into batches sized from the tasks'
measured time. Futures are standard concurrent.futures ones; a task lost with its workers, or
with the scheduler, fails its future with a BrokenProcessPool (shmproc.futures.BrokenWorkerError,
the cause in its message). ``ProcessPoolExecutor(..., cluster=X)`` returns one.
"""
import threading

from shmproc.distributed.clients import connect
from shmproc.distributed.engine import ClusterEngine
from shmproc.futures import ProcessPoolExecutor
from shmproc.pool import check_callable, check_retries

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
        if initializer is not None:
            check_callable(initializer, "initializer")
        retries = check_retries(retries)
        self._task_timeout = None
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        connection = connect(cluster, max_workers, security=security, insecure=insecure)
        try:
            self._engine = ClusterEngine(connection, initializer, tuple(initargs), retries)
        except BaseException:
            connection.close()
            raise
        self._max_workers = self._engine._threads

    @property
    def client(self):
        """The distributed.Client the executor's tasks go through."""
        return self._engine.client
