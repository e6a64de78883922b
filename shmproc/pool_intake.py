# mypy: disable-error-code="attr-defined, has-type"
# (the attributes these methods use are set by Engine.__init__, in shmproc/pool_engine.py)
"""How the pool engine (shmproc/pool_engine.py) takes results in: it drains the result ring, matches
each message to the batch it answers, decodes what was pickled and hands every result to its job's
sink. A base class of Engine, as shmproc/pool_end.py is.

A result that did not travel fails its own task, as its pool reports it. multiprocessing.Pool's
way: a value the worker could not pickle is ``MaybeEncodingError``, one the parent cannot unpickle
fails with the unpickling error. concurrent.futures' way (``executor_errors``): the pickling error
itself, with the worker's traceback as its cause; and what ``wrap_unpickling_error`` makes of the
unpickling error (the executor's ``BrokenProcessPool``, whose cause it is).
"""
import pickle
import traceback

from shmproc import pool_worker as _w

__all__ = ["EngineResults"]


class EngineResults:
    """The results side of an Engine (its attributes are the Engine's)."""

    def _drain_results(self):
        results = self._results
        while True:
            try:
                messages = results.get_many(256, block=False)
            except Exception as exc:
                if type(exc).__name__ == "Empty":
                    return
                # A message the core could not decode: nothing to attribute it to.
                traceback.print_exc()
                continue
            for message in messages:
                self._accept(message)

    def _accept(self, message):
        slot, pid, number, first_seq, values, flags = message
        worker = self._workers[slot]
        if worker.process is None or worker.process.pid != pid:
            return
        if number == _w.READY:
            worker.ready = True
            return
        if not worker.batches:
            return
        batch = worker.batches[0]
        if batch.number != number:
            return
        offset = first_seq - batch.first_seq
        count = len(values)
        if flags is None and type(batch.jobs) is not list and hasattr(batch.jobs.sink,
                                                                      "_set_results"):
            job = batch.jobs
            job.pending -= count
            if job.progress is not None:
                job.progress.update(count)
            self._deliver_many(job, batch.indices + offset, values)
        elif flags is None and batch.kind == _w.APPLY:
            # Calls (apply_async, submit) that all returned plain values. An engine's calls are
            # all of one kind (a Pool's or an executor's), which finishes them together.
            calls = batch.jobs[offset:offset + count]
            try:
                calls[0].finish_plain(calls, values)
            except Exception:
                traceback.print_exc()
        else:
            for position in range(count):
                job = batch.job(offset + position)
                index = batch.index(offset + position)
                flag = flags[position] if flags is not None else _w.PLAIN
                if flag == _w.SKIPPED:
                    # Not started, as shutdown(cancel_futures=True) asked: cancelled.
                    job.pending -= 1
                    try:
                        job.sink._cancel_unstarted()
                    except Exception:
                        traceback.print_exc()
                    continue
                success, value = self._decode(flag, values[position])
                job.pending -= 1
                if job.progress is not None:
                    job.progress.update(1)
                self._deliver(job, index, success, value)
        batch.received = offset + count
        if batch.received >= len(batch.items):
            worker.batches.popleft()
            worker.acknowledged = number
            self._learn_task_time(worker)

    def _decode(self, flag, value):
        if flag == _w.PLAIN:
            return True, value
        try:
            if type(value) is tuple:
                decoded = pickle.loads(value[0], buffers=value[1])
            else:
                decoded = pickle.loads(value)
        except BaseException as exc:
            # BaseException too: a result whose unpickling raises SystemExit must not end the
            # pool thread (which would fail every other task).
            add_note = getattr(exc, "add_note", None)      # Python 3.11+
            if add_note is not None:
                add_note("(raised while unpickling the task's result in the parent)")
            if self.wrap_unpickling_error is not None:
                return False, self.wrap_unpickling_error(exc)
            return False, exc
        if flag == _w.UNPICKLABLE:
            original, wrapped = decoded
            if self.executor_errors and original is not None:
                return False, original
            return False, wrapped
        return flag == _w.PICKLED, decoded

    def _deliver_many(self, job, start, values):
        try:
            job.sink._set_results(start, values)
        except Exception:
            traceback.print_exc()

    def _deliver(self, job, index, success, value):
        try:
            job.sink._set_result(index, success, value)
        except Exception:
            traceback.print_exc()

    def _fail(self, job, index, exc):
        job.pending -= 1
        if job.progress is not None:
            job.progress.update(1)
        self._deliver(job, index, False, exc)

    def _learn_task_time(self, worker):
        """The time a task takes, from what this worker's slot did since its previous batch. A
        slower figure is taken at once: calls that turn slow get small batches at once, and stay
        in the parent, cancellable, until a worker is free for them. A faster one is taken
        halfway: batches grow at most twofold per batch that comes back."""
        base = worker.slot * _w.RECORD_FIELDS
        done = self._record[base + _w.FIELD_DONE]
        count = done - worker.seen_done
        if count <= 0:
            return
        busy = self._record[base + _w.FIELD_BUSY]
        recent = (busy - worker.seen_busy) / count
        worker.seen_done, worker.seen_busy = done, busy
        known = self._task_ns
        self._task_ns = recent if known is None or recent >= known else (known + recent) / 2
