"""Start a child by asking multiprocessing's fork server: its machinery, reused.

The fork server is shared with multiprocessing (one server per session, whichever library asked
first). shmproc adds the parent-death plan, a clear pickling error (as for spawn), and asks the
server to preload shmproc's contexts (which hold the Process classes and import process.py), so
that its children do not import them each time.
"""
from multiprocessing import popen_forkserver

from shmproc import _compat, parent_death
from shmproc.popen_spawn_posix import explained_pickling_errors

__all__ = ["Popen"]

PRELOAD = ("shmproc.context",)


class Popen(popen_forkserver.Popen):

    def _launch(self, process_obj):
        process_obj._parent_death = parent_death.plan(self.method, process_obj)
        _compat.add_forkserver_preload(PRELOAD)
        with explained_pickling_errors(self, process_obj):
            super()._launch(process_obj)
