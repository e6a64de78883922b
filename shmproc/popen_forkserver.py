"""Start a child by asking multiprocessing's fork server: its machinery, reused.

The fork server is shared with multiprocessing (one server per session, whichever library asked
first). shmproc adds the parent-death plan, a clear pickling error (as for spawn), and asks the
server to preload shmproc's process module, so that its children do not import it each time.
"""
from multiprocessing import forkserver, popen_forkserver

from shmproc import parent_death
from shmproc.popen_spawn_posix import explained_pickling_errors

__all__ = ["Popen"]

PRELOAD = ("shmproc.process",)


def _ask_for_preload():
    # Only a server not started yet reads the list; one already running (started by
    # multiprocessing, say) serves as it is.
    server = forkserver._forkserver
    preload = getattr(server, "_preload_modules", None)
    if isinstance(preload, list) and getattr(server, "_forkserver_pid", None) is None:
        for module in PRELOAD:
            if module not in preload:
                preload.append(module)


class Popen(popen_forkserver.Popen):

    def _launch(self, process_obj):
        process_obj._parent_death = parent_death.plan(self.method)
        _ask_for_preload()
        with explained_pickling_errors(self, process_obj):
            super()._launch(process_obj)
