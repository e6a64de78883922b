"""The cluster's own failure: losing the scheduler, as an exception the local pool's callers
already catch."""
from shmproc.pool_results import WorkerLostError

__all__ = ["SchedulerLostError"]


class SchedulerLostError(WorkerLostError, ConnectionError):
    """The connection to the Dask scheduler was lost, and with it every task in flight. A
    WorkerLostError (the executor turns it into a BrokenProcessPool) and a ConnectionError."""
