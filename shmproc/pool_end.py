# mypy: disable-error-code="attr-defined, has-type"
# (the attributes these methods use are set by Engine.__init__, in shmproc/pool_engine.py)
"""How the pool engine (shmproc/pool_engine.py) ends: shutdown(cancel_futures=True)'s cancelling,
the end at the process's exit, its workers stopped, every task still owed a result failed (nothing
waits forever), its rings and descriptors given back. A base class of Engine, so that these steps
read as one piece."""
import os
import time

from shmproc import pool_worker as _w
from shmproc.pool_tasks import CLOSE, RUN, TERMINATE

__all__ = ["EngineEnd", "end_at_exit"]


class EngineEnd:
    """The end of an Engine's life (its attributes are the Engine's)."""

    def _cancel_queued(self):
        """shutdown(cancel_futures=True): as the standard executor, whose manager thread fills its
        call queue (max_workers + 1 calls, marked running) before it cancels the rest, every
        worker's window is filled first, a worker still starting (spawn) included: the calls
        submitted first run, the others are cancelled. Then each worker is told to skip the
        calls it holds after the one it is running (or will run first): batches sized for
        earlier, tiny calls may hold many; those it reports not started are cancelled too."""
        self._cancel_asked = False
        for worker in self._workers:
            if worker.alive:
                worker.ready = True     # its ring holds the calls until it reads it
        self._dispatch()
        self._cancel_jobs()
        record = self._record
        for worker in self._workers:
            if not worker.batches:
                continue
            base = worker.slot * _w.RECORD_FIELDS
            first = worker.batches[0]
            next_open = first.first_seq + first.received
            record[base + _w.FIELD_SKIP_FROM] = max(next_open, record[base + _w.FIELD_SEQ]) + 1

    def _cancel_jobs(self):
        for job in self._jobs:
            cancel = getattr(job.sink, "_cancel", None)
            if cancel is not None and cancel():
                job.dropped = True

    def _end_for_exit(self):
        """The process is exiting (pool thread): the tasks that went in run to the end, the input
        of a lazily read map that no one will consume again is dropped, then the pool closes."""
        for job in self._jobs:
            if job.buffersize is not None:
                job.dropped = True
        if self.state == RUN:
            self.state = CLOSE

    def _kill_all(self):
        processes = [w.process for w in self._workers if w.process is not None]
        for process in processes:
            if process.exitcode is None:
                try:
                    process.terminate()
                except Exception:
                    pass
        deadline = time.monotonic() + 1.0
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()
        for worker in self._workers:
            if worker.process is not None:
                self._forget_worker(worker)

    def _fail_outstanding(self):
        """The pool is gone: every task still owed a result gets an error (nothing waits forever)."""
        error = RuntimeError("the pool was terminated before this task finished")
        for worker in self._workers:
            for batch in worker.batches:
                for offset in range(batch.received, len(batch.items)):
                    self._fail(batch.job(offset), batch.index(offset), error)
            worker.batches.clear()
        for job, index, _, _ in self._requeued:
            self._fail(job, index, error)
        self._requeued.clear()
        self._take_incoming()
        if self._cancel_asked:
            self._cancel_jobs()             # cancelled as asked, not failed
        for job in self._jobs:
            sink = job.sink
            if job.kind == _w.APPLY:
                if sink._start():
                    self._fail(job, 0, error)
                continue
            if job.length is None:
                job.length = job.next_index
                if hasattr(sink, "_set_length"):
                    sink._set_length(job.next_index + (1 if not job.exhausted else 0))
                if not job.exhausted:
                    self._fail(job, job.next_index, error)
            elif job.next_index < job.length:
                for index in range(job.next_index, job.length):
                    self._fail(job, index, error)
        self._jobs.clear()

    def release(self):
        """After the pool thread has ended: give back the rings."""
        if self._stopped.is_set() is False:
            return
        for worker in self._workers:
            if worker.ring is not None:
                worker.ring.close()
                worker.ring = None
        if self._results is not None:
            self._results.close()
            self._results = None
        # Once only: a second close of these numbers would close whatever took them since
        # (another pool's wake-up pipe, whose pool thread then read a closed descriptor).
        fds, self._wake_read, self._wake_write = (self._wake_read, self._wake_write), -1, -1
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def end_at_exit(engine_ref):
    """The process exits with this engine still running. An executor's calls run to the end, as
    the standard executor's do at exit (finish_at_exit); a Pool is terminated, as
    multiprocessing.Pool's finalizer does. Either way no worker is left for multiprocessing's exit
    function to terminate under the pool thread, which would start replacements."""
    engine = engine_ref()
    if engine is None or engine._stopped.is_set():
        return
    if engine.finish_at_exit and engine.state != TERMINATE:
        engine._incoming.append(("exit", None))
        engine._wake()
    else:
        engine.terminate()
    engine.join()

