"""Start a child in a fresh interpreter: multiprocessing's spawn machinery, reused.

Spawn's cost is the new interpreter, not the launcher, so shmproc keeps the standard library's
launcher (main-module preparation, resource tracker, command line, set_executable) and adds two
things: the parent-death plan that travels with the process object, and a clear error in the
parent, from start(), when the process object cannot be pickled.
"""
import contextlib
import pickle
from multiprocessing import popen_spawn_posix

from shmproc import parent_death

__all__ = ["Popen"]


@contextlib.contextmanager
def explained_pickling_errors(popen, process_obj):
    """Turn a failure to pickle the process object into an error that says what to do.

    multiprocessing pickles the process object before it launches the child, and sets
    ``popen.sentinel`` only once the child exists: an error before that is a pickling error."""
    try:
        yield
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        if hasattr(popen, "sentinel"):
            raise
        raise pickle.PicklingError(
            f"cannot start {process_obj.name!r} with the {popen.method!r} start method: its "
            f"target, args and kwargs must be picklable, but pickling failed ({exc}); define "
            f"the target at module level, or use the 'fork' start method") from exc


class Popen(popen_spawn_posix.Popen):

    def _launch(self, process_obj):
        process_obj._parent_death = parent_death.plan(self.method, process_obj)
        with explained_pickling_errors(self, process_obj):
            super()._launch(process_obj)
