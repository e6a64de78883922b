"""Start a child by asking multiprocessing's fork server: its machinery, reused.

The fork server is shared with multiprocessing (one server per session, whichever library asked
first). shmproc adds the parent-death plan and a clear pickling error, as for spawn.
"""
from multiprocessing import popen_forkserver

from shmproc import parent_death
from shmproc.popen_spawn_posix import explained_pickling_errors

__all__ = ["Popen"]


class Popen(popen_forkserver.Popen):

    def _launch(self, process_obj):
        process_obj._parent_death = parent_death.plan(self.method)
        with explained_pickling_errors(self, process_obj):
            super()._launch(process_obj)
