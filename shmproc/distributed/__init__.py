"""shmproc's Pool and executor on a Dask cluster: ``Pool(..., cluster=...)``.

``cluster`` is a ``distributed.Client``, a ``distributed.LocalCluster`` (or any Dask cluster object
with a ``scheduler_address``), a scheduler address, or ``"local"`` (a cluster made here: workers on
127.0.0.1, no dashboard). The API is the local Pool's and executor's; what differs is written in
docs/cluster.md and docs/differences.md.

This package needs the optional dependency ``shmproc[dask]`` (dask and distributed); ``import
shmproc`` never imports it, only ``cluster=`` does.

One job per file:
- clients.py        turn ``cluster=`` into a connected Client, refusing insecure remote addresses
- shared_arrays.py  shared ndarrays to workers: by handle where a worker can attach, else by value
- batches.py        a batch of tasks as bytes (client side) and its run on a worker
- engine.py         batching, the window of batches in flight, results, failures
- pool.py, executor.py  the public faces: ClusterPool, ClusterExecutor
"""
try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:         # pragma: no cover - exercised by a test in a clean interpreter
    raise ImportError(
        "shmproc's cluster= needs Dask: install it with  pip install \"shmproc[dask]\"  "
        f"(dask and distributed; importing them failed: {exc})") from exc

from shmproc.distributed.errors import SchedulerLostError
from shmproc.distributed.executor import ClusterExecutor
from shmproc.distributed.pool import ClusterPool

__all__ = ["ClusterExecutor", "ClusterPool", "SchedulerLostError"]
