"""joblib's ``Parallel`` on shmproc's Pool: ``joblib.parallel_config(backend="shmproc")``.

Importing this module registers the backend (``import shmproc`` does not import joblib). Locally
it runs on ``shmproc.Pool``; ``joblib.parallel_config(backend="shmproc", cluster=...)`` runs it on
a Dask cluster through ``Pool(cluster=...)`` (any ``cluster=`` the Pool takes).

Large arguments: a numpy array of at least ``max_nbytes`` bytes (1 MB, joblib's own default
threshold) is copied once per ``Parallel`` call into shared memory, then every task that takes it
gets a handle (a same-host worker maps it; a cluster worker elsewhere gets a copy). joblib's loky
backend instead hashes the array's content at every dispatch to name its memory-mapped file.
A shmproc shared array is passed as it is, never copied.
"""
import joblib
import numpy as np
from joblib._parallel_backends import (
    AutoBatchingMixin,
    ParallelBackendBase,
    PoolManagerMixin,
)

from shmproc import ndarray as _ndarray

__all__ = ["ShmprocBackend", "register"]

_MAX_NBYTES = 1 << 20


class ShmprocBackend(PoolManagerMixin, AutoBatchingMixin, ParallelBackendBase):
    """A joblib backend on shmproc.Pool (or a Dask cluster with ``cluster=``)."""

    supports_retrieve_callback = True
    supports_timeout = True

    def __init__(self, cluster=None, max_nbytes=_MAX_NBYTES, pool_options=None, **kwargs):
        super().__init__(**kwargs)
        self.cluster = cluster
        self.max_nbytes = max_nbytes
        self.pool_options = dict(pool_options or {})
        self._shared = {}                 # id(array) -> (array, its shared copy), for one call

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **backend_kwargs):
        from shmproc.pool import Pool
        n_jobs = self.effective_n_jobs(n_jobs)
        options = dict(self.pool_options)
        if self.cluster is not None:
            options["cluster"] = self.cluster
        self._pool = Pool(n_jobs, **options)
        self.parallel = parallel
        self._shared.clear()
        return n_jobs

    def effective_n_jobs(self, n_jobs):
        if n_jobs is None:
            n_jobs = 1
        return super().effective_n_jobs(n_jobs)

    def terminate(self):
        super().terminate()
        self._shared.clear()
        self.reset_batch_stats()

    def _in_shared_memory(self, value):
        if (type(value) is not np.ndarray or value.nbytes < self.max_nbytes or
                value.dtype.hasobject):
            return value
        known = self._shared.get(id(value))
        if known is None:
            known = self._shared[id(value)] = (value, _ndarray.asshared(value))
        return known[1]

    def submit(self, func, callback=None):
        items = getattr(func, "items", None)
        if items is not None:                   # joblib's BatchedCalls: (function, args, kwargs)
            share = self._in_shared_memory
            func.items = [(function, tuple(share(a) for a in args),
                           {key: share(v) for key, v in kwargs.items()})
                          for function, args, kwargs in items]
        return self._pool.apply_async(func, (), callback=callback, error_callback=callback)

    def retrieve_result_callback(self, out):
        if isinstance(out, BaseException):
            raise out
        return out


def register():
    """Register the backend under the name "shmproc" (done on import)."""
    joblib.register_parallel_backend("shmproc", ShmprocBackend)


register()
