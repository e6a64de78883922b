"""The cluster's own failures, as exceptions the local pool's callers already catch."""
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import ProcessError

__all__ = ["BrokenClusterPool", "SchedulerLostError"]


class SchedulerLostError(ProcessError, ConnectionError):
    """The connection to the Dask scheduler was lost: the tasks that were running are lost too.
    A ProcessError (as the pool's WorkerLostError) and a ConnectionError."""


class BrokenClusterPool(BrokenProcessPool):
    """The executor's face of a lost task or scheduler: existing ``except BrokenProcessPool``
    clauses keep working. The cause is chained (``__cause__``)."""
