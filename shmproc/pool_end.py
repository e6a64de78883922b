# mypy: disable-error-code="attr-defined, has-type"
# (the attributes these methods use are set by Engine.__init__, in shmproc/pool_engine.py)
"""How the pool engine (shmproc/pool_engine.py) ends: its workers stopped, every task still owed a
result failed (nothing waits forever), its rings and descriptors given back. A base class of
Engine, so that these steps read as one piece."""
import os
import time

from shmproc import pool_worker as _w

__all__ = ["EngineEnd"]


class EngineEnd:
    """The end of an Engine's life (its attributes are the Engine's)."""

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
