"""joblib's ``Parallel`` on shmproc's Pool: ``joblib.parallel_config(backend="shmproc")``.

Importing this module registers the backend (``import shmproc`` does not import joblib). Locally
it runs on ``shmproc.Pool``; ``joblib.parallel_config(backend="shmproc", cluster=...)`` runs it on
a Dask cluster through ``Pool(cluster=...)`` (any ``cluster=`` the Pool takes).

Large arguments: a numpy array of at least ``max_nbytes`` bytes (1 MB, joblib's own default
threshold) is never pickled into a task. The local pool is started (forked) at the first task of
a ``Parallel`` call, after the arrays of that first batch were noted in a table the workers inherit
with the fork: a task then names the array by its number, and the worker uses its inherited,
copy-on-write view of the caller's memory; no copy at all. An array first seen later in the call
(or any, with spawn, forkserver or a cluster) is copied once into shared memory and goes as a
handle (a same-host worker maps it; a cluster worker elsewhere gets a copy). Either way an array
is recognised by identity within one call. joblib's loky backend instead dumps each large array to
a memory-mapped file, named by a hash of its content.
A shmproc shared array is passed as it is, never copied.
"""
import itertools

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

# number -> array, noted before the local pool forks: its workers inherit this table.
_inherited: dict = {}
_numbers = itertools.count()


def _inherited_array(number):
    return _inherited[number]


class _ByInheritance:
    """An argument a forked worker already has: pickled as its number in the inherited table."""

    __slots__ = ("number",)

    def __init__(self, number):
        self.number = number

    def __reduce__(self):
        return _inherited_array, (self.number,)


class ShmprocBackend(PoolManagerMixin, AutoBatchingMixin, ParallelBackendBase):
    """A joblib backend on shmproc.Pool (or a Dask cluster with ``cluster=``)."""

    supports_retrieve_callback = True
    supports_timeout = True

    def __init__(self, cluster=None, max_nbytes=_MAX_NBYTES, pool_options=None, **kwargs):
        super().__init__(**kwargs)
        self.cluster = cluster
        self.max_nbytes = max_nbytes
        self.pool_options = dict(pool_options or {})
        self._shared = {}       # id(array) -> (array, what tasks get: shared copy or _ByInheritance)

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **backend_kwargs):
        n_jobs = self.effective_n_jobs(n_jobs)
        self._n_jobs = n_jobs
        self._pool = None                 # started by the first task: see _start_pool
        self.parallel = parallel
        self._forget_arrays()
        return n_jobs

    def _start_pool(self, items):
        from shmproc.pool import Pool
        options = dict(self.pool_options)
        if self.cluster is not None:
            options["cluster"] = self.cluster
        elif self._forks(options):
            for _, args, kwargs in items:
                for value in (*args, *kwargs.values()):
                    if self._is_large(value) and id(value) not in self._shared:
                        number = next(_numbers)
                        _inherited[number] = value
                        self._shared[id(value)] = (value, _ByInheritance(number))
        self._pool = Pool(self._n_jobs, **options)

    @staticmethod
    def _forks(options):
        import shmproc
        context = options.get("context")
        method = context.get_start_method() if context is not None else shmproc.get_start_method()
        return method == "fork"

    def _forget_arrays(self):
        for _, stand_in in self._shared.values():
            if type(stand_in) is _ByInheritance:
                _inherited.pop(stand_in.number, None)
        self._shared.clear()

    def effective_n_jobs(self, n_jobs):
        if n_jobs is None:
            n_jobs = 1
        return super().effective_n_jobs(n_jobs)

    def terminate(self):
        super().terminate()
        self._forget_arrays()
        self.reset_batch_stats()

    def _is_large(self, value):
        return (type(value) is np.ndarray and value.nbytes >= self.max_nbytes and
                not value.dtype.hasobject)

    def _in_shared_memory(self, value):
        if not self._is_large(value):
            return value
        known = self._shared.get(id(value))
        if known is None:
            known = self._shared[id(value)] = (value, _ndarray.asshared(value))
        return known[1]

    def submit(self, func, callback=None):
        items = getattr(func, "items", None)
        if self._pool is None:
            self._start_pool(items or [])
        assert self._pool is not None
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
