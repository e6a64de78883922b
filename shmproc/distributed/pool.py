"""ClusterPool: shmproc.Pool's API, its tasks run on a Dask cluster.

It is the local Pool (shmproc/pool.py) with another engine: every method, argument check, result
object and progress bar is the local pool's, so a program moves to a cluster by adding
``cluster=`` and nothing else changes. ``Pool(..., cluster=X)`` returns one.
"""
from shmproc.distributed.engine import ClusterEngine
from shmproc.pool import _POOL_DEFAULT, Pool
from shmproc.pool_engine import RUN

__all__ = ["ClusterPool"]

_NO_TIMEOUT = "task_timeout is not supported with cluster= (a Dask worker cannot stop one task " \
              "without stopping the others)"


class ClusterPool(Pool):
    """A Pool whose workers are a Dask cluster's.

    ``cluster``: a distributed.Client, a Dask cluster (LocalCluster, ...), a scheduler address, or
    ``"local"`` (a cluster made here and closed with the pool: ``processes`` workers on 127.0.0.1,
    no dashboard). ``security``: a distributed.security.Security, passed to Dask. ``insecure``: allow
    a clear-text ``tcp://`` scheduler that is not on loopback. ``processes`` sizes only a
    ``"local"`` cluster; ``maxtasksperchild`` and ``task_timeout`` are not supported (Dask workers
    are long-lived and run tasks in threads).
    """

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None, *, retries=0, task_timeout=None, cluster, security=None,
                 insecure=False):
        if getattr(self, "_state", None) is not None:
            return        # Pool(cluster=...) made this one; Python calls __init__ again with its args
        self._state = None
        self._engine = None
        if processes is not None:
            if isinstance(processes, bool) or not isinstance(processes, int):
                raise TypeError(f"processes must be an int, not {type(processes).__name__}")
            if processes < 1:
                raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            raise ValueError("maxtasksperchild is not supported with cluster= (Dask workers are "
                             "long-lived; restart them with client.restart())")
        if task_timeout is not None:
            raise ValueError(_NO_TIMEOUT)
        self._cache = {}
        engine = ClusterEngine.start(cluster, processes, initializer, initargs, retries, security,
                                     insecure)
        self._cluster_engine = engine
        self._engine = engine            # the local engine's interface, on Dask
        self._processes = engine._threads
        self._task_timeout = None
        self._ctx = None
        self._pool = self._engine.pool
        self._state = RUN

    @property
    def client(self):
        """The distributed.Client the pool's tasks go through."""
        return self._cluster_engine.client

    def _timeout(self, task_timeout):
        if task_timeout is not _POOL_DEFAULT and task_timeout is not None:
            raise ValueError(_NO_TIMEOUT)

    def __repr__(self):
        engine = getattr(self, "_cluster_engine", None)
        address = engine.connection.address if engine is not None else None
        return (f"<{type(self).__module__}.{type(self).__qualname__} state={self._state} "
                f"scheduler={address!r}>")
