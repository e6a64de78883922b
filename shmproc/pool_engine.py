"""The engine behind shmproc.Pool and shmproc.futures.ProcessPoolExecutor.

Shape (docs/pool.md has the reasons):
- every worker has its own task ring; all workers share one result ring, read by the parent;
- one thread in the parent, the pool thread, started after the first workers are forked, does all
  the bookkeeping: it waits in one poll() on the result ring's descriptor, every worker's sentinel
  (a pidfd) and a wake-up pipe for callers, with the nearest task deadline as its timeout;
- tasks go out in batches (several per ring record, sized from the measured task time), at most
  two batches in flight per worker, so the parent decides which worker runs which task and always
  knows what a dead worker held; a task is one call of the user's function, never a chunk;
- an ownership record in shared memory (shmproc/pool_worker.py) tells, after a death, which task was
  running (lost: WorkerLostError, or retried), and which never started (sent to another worker);
- a task past its timeout gets its worker SIGKILLed and a TaskTimeoutError; the worker is replaced.
"""
import collections
import os
import pickle
import select
import signal
import threading
import time
import traceback
import weakref
from multiprocessing import util
from typing import Any

from shmproc import _compat
from shmproc import pool_worker as _w
from shmproc.pool_end import EngineEnd, end_at_exit
from shmproc.pool_intake import EngineResults
from shmproc.pool_results import TaskTimeoutError, WorkerLostError
from shmproc.pool_tasks import (
    CLOSE,
    RUN,
    TERMINATE,
    Batch,
    Job,
    WorkerSlot,
    as_buffer,
    find_task,
    short_repr,
    signal_name,
)

__all__ = ["Engine", "RUN", "CLOSE", "TERMINATE"]


_IN_FLIGHT = 2                   # batches per worker: one running, one waiting in its ring
# An executor's calls at least this long (or of unknown length): one batch per worker (_window).
_LONG_TASK_NS = 5_000_000
_BATCH_TARGET_NS = 2_000_000     # a batch of tiny tasks should take about this long
_MAX_BATCH = 1024
# Ring windows: a fresh window's pages are populated when the ring is made (~1 ms per MB here),
# and pool start-up pays for them. Batches are kilobytes; larger messages take the spill path.
_TASK_RING_CAPACITY = 1 << 16
_RESULT_RING_CAPACITY = 1 << 18
_BOUNCE_LIMIT = 3                # a task whose workers die before starting it this often fails


class Engine(EngineResults, EngineEnd):
    def __init__(self, processes, initializer, initargs, maxtasksperchild, context, retries=0,
                 task_timeout=None, name="PoolWorker", executor_errors=False,
                 wrap_unpickling_error=None, finish_at_exit=False):
        from shmproc import _core
        from shmproc.queues import SimpleQueue
        self._SimpleQueue = SimpleQueue
        self._context = context
        self._processes = processes
        self._initializer = initializer
        self._initargs = initargs
        self._maxtasks = maxtasksperchild
        self.retries = retries
        self.task_timeout = task_timeout
        self._name = name
        self.executor_errors = executor_errors              # see shmproc/pool_intake.py
        self.wrap_unpickling_error = wrap_unpickling_error
        self.finish_at_exit = finish_at_exit    # see end_at_exit (shmproc/pool_end.py)
        self.state = RUN
        self._results: Any = SimpleQueue(capacity=_RESULT_RING_CAPACITY)
        self._record_block = _core.allocate(8 * _w.RECORD_FIELDS * processes)
        self._record = memoryview(as_buffer(self._record_block)).cast("q")
        self._workers = [WorkerSlot(slot) for slot in range(processes)]
        self.pool = []                  # the live Process objects (multiprocessing's _pool)
        self._next_seq = 1              # task numbers, for the ownership record
        self._jobs: collections.deque = collections.deque()      # jobs with tasks to hand out
        self._requeued: collections.deque = collections.deque()  # (job, index, item, attempt)
        self._incoming: collections.deque = collections.deque()  # from callers: jobs, commands
        self._wake_pending = False
        self._cancel_asked = False      # shutdown(cancel_futures=True) came in
        self._hungry = True             # some worker has room and nothing to do
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poller = select.poll()
        self._by_fd = {}
        self._task_ns = None            # measured mean task time
        self._ready_at_start = context.get_start_method() == "fork"
        if context.get_start_method() == "forkserver":
            # A fork server not started yet imports what a worker needs once, not each worker.
            from shmproc import _compat
            _compat.add_forkserver_preload(("shmproc.pool_worker", "shmproc.queues"))
        self._stopped = threading.Event()
        self._shutdown_error = None
        try:
            for worker in self._workers:
                self._start_worker(worker)
        except BaseException:
            self._abandon_start()
            raise
        self._thread = threading.Thread(target=self._run, name="shmproc-pool", daemon=True)
        self._thread.start()
        # At exit, multiprocessing's exit function runs the finalizers of priority >= 0 before it
        # terminates the daemonic children (the workers), in the main process and in a child
        # alike. The weak reference lets an engine dropped earlier be collected.
        util.Finalize(self, end_at_exit, args=(weakref.ref(self),), exitpriority=20)

    # -- called from any thread -------------------------------------------------------------------

    def submit(self, job):
        self._incoming.append(job)
        # The pool thread needs a wake-up only when a worker waits for work: otherwise it takes
        # new jobs when the next results come in (a wake-up per call would hand the GIL back and
        # forth between the caller and the pool thread, the main cost of submit() otherwise).
        if self._hungry:
            self._wake()

    def submit_iteration(self, results, kind, func, items, length, timeout, chunksize, buffersize,
                         progress):
        """An imap-like job: results is an IMapIterator, told the length when it is known and
        telling the engine when it is consumed (for buffersize)."""
        job = Job(results, kind, func, iter(items), length=length, timeout=timeout,
                  chunksize=chunksize, buffersize=buffersize, progress=progress)
        if length is not None:
            results._set_length(length)
        if buffersize is not None:
            results._on_consume = lambda count: self.consumed(job, count)
        self.submit(job)
        return job

    def _wake(self):
        if not self._wake_pending:
            self._wake_pending = True
            fd = self._wake_write
            if fd < 0:
                return                  # released: the pool thread has ended
            try:
                os.write(fd, b"!")
            except (BlockingIOError, OSError):
                pass

    def consumed(self, job, count):
        """imap's iterator took results: a job with a buffer may take more input."""
        job.consumed += count
        if job.buffersize is not None:
            self._wake()

    def close(self):
        if self.state == RUN:
            self.state = CLOSE
            self._wake()

    def terminate(self):
        self.state = TERMINATE
        self._wake()

    def join(self, timeout=None):
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def stats(self):
        record = self._record
        out = []
        for worker in self._workers:
            base = worker.slot * _w.RECORD_FIELDS
            process = worker.process
            out.append({
                "slot": worker.slot,
                "pid": process.pid if process is not None else None,
                "tasks": record[base + _w.FIELD_DONE],
                "busy": record[base + _w.FIELD_BUSY] / 1e9,
                "restarts": worker.restarts,
                "running": record[base + _w.FIELD_STARTED] != 0,
            })
        return out

    def cancel_pending(self):
        """Cancel every submitted task not sent to a worker yet (futures that can be cancelled)."""
        self._incoming.append(("cancel", None))
        self._wake()

    def repopulate(self):
        """Start workers in empty slots now (multiprocessing's _repopulate_pool)."""
        for worker in self._workers:
            if worker.process is None or (worker.process.exitcode is not None
                                          and not worker.batches):
                self._incoming.append(("repopulate", worker))
        self._wake()

    # -- workers ----------------------------------------------------------------------------------

    def _start_worker(self, worker):
        if worker.ring is not None:
            worker.ring.close()
        worker.ring = self._SimpleQueue(capacity=_TASK_RING_CAPACITY)
        worker.batches.clear()
        worker.acknowledged = 0
        worker.budget = self._maxtasks
        worker.stopping = False
        worker.timed_out = None
        worker.started_tasks = 0
        worker.ready = self._ready_at_start
        # The block itself, not a handle made here: pickled while the process starts (spawn,
        # forkserver), its descriptor travels with the start, so the worker neither opens it
        # through this process's /proc entry nor tells the keeper it has.
        process = self._context.Process(
            target=_w.worker_main, name=f"{self._name}-{worker.slot + 1}",
            args=(worker.slot, worker.ring, self._results, self._record_block, self._initializer,
                  self._initargs, not worker.ready))
        process.daemon = True
        process.start()
        if worker.process is not None:
            try:
                self.pool.remove(worker.process)
            except ValueError:
                pass
        worker.process = process
        worker.alive = True
        self.pool.append(process)
        fd = getattr(process, "sentinel", None)     # None: a foreign context's stand-in process
        if fd is not None:
            self._poller.register(fd, select.POLLIN)
            self._by_fd[fd] = worker

    def _abandon_start(self):
        """A worker failed to start: stop those already started (as multiprocessing's Pool does,
        so none is left running) and give back the rings."""
        for worker in self._workers:
            process = worker.process
            if process is not None:
                getattr(process, "kill", process.terminate)()
                process.join()
        self._stopped.set()
        self.release()

    def _forget_worker(self, worker):
        fd = getattr(worker.process, "sentinel", None)
        if fd is None:
            return
        self._by_fd.pop(fd, None)
        try:
            self._poller.unregister(fd)
        except KeyError:
            pass

    # -- the pool thread --------------------------------------------------------------------------

    def _run(self):
        results_fd = self._results.fileno()
        self._poller.register(results_fd, select.POLLIN)
        self._poller.register(self._wake_read, select.POLLIN)
        try:
            while True:
                timeout = self._enforce_timeouts()
                events = self._poller.poll(None if timeout is None else max(0, timeout) * 1000)
                dead = []
                for fd, _ in events:
                    if fd == self._wake_read:
                        # Read first, then clear: a byte written between the two would otherwise
                        # be consumed with the flag left set, and no caller would write again.
                        # A caller that sees the flag still set has queued its job before this
                        # thread takes the incoming queue below.
                        try:
                            os.read(self._wake_read, 4096)
                        except BlockingIOError:
                            pass
                        except OSError:
                            # The pipe is gone under this thread (only a close by someone else,
                            # or the interpreter's last moments, can do that): poll() would
                            # report it forever, so end as terminate() would.
                            self.state = TERMINATE
                        self._wake_pending = False
                    elif fd != results_fd:
                        worker = self._by_fd.get(fd)
                        if worker is not None:
                            dead.append(worker)
                self._drain_results()
                self._take_incoming()
                for worker in dead:
                    self._worker_died(worker)
                if self.state == TERMINATE:
                    break
                self._dispatch()
                while self._hungry and self._incoming:
                    # Jobs that came in while the workers were full: callers did not wake us.
                    self._take_incoming()
                    self._dispatch()
                if self._cancel_asked:
                    self._cancel_queued()
                if self.state == CLOSE and self._idle():
                    if self._stop_workers():
                        break
        except BaseException as exc:
            self._shutdown_error = exc
            traceback.print_exc()
        finally:
            self._kill_all()
            self._fail_outstanding()
            self._stopped.set()

    def _idle(self):
        if self._requeued or self._incoming:
            return False
        for job in self._jobs:
            if not job.dropped and (job.kind == _w.APPLY or not job.exhausted):
                return False
        return not any(worker.batches for worker in self._workers)

    def _stop_workers(self):
        """Closed and nothing left: ask every worker to exit; True once they all have."""
        alive = False
        for worker in self._workers:
            process = worker.process
            if process is None or not worker.alive:
                continue
            alive = True
            if not worker.stopping:
                worker.stopping = True
                worker.ring.put(None)
        return not alive

    def _take_incoming(self):
        while self._incoming:
            entry = self._incoming.popleft()
            if type(entry) is tuple:
                command, worker = entry
                if command == "cancel":
                    self._cancel_asked = True       # done by _cancel_queued, after the jobs
                elif command == "exit":
                    self._end_for_exit()
                elif not worker.alive:
                    self._replace(worker)
            else:
                self._jobs.append(entry)

    # -- dispatch ---------------------------------------------------------------------------------

    def _dispatch(self):
        self._hungry = False
        window = self._window()
        for worker in self._workers:
            while (len(worker.batches) < window and not worker.stopping and worker.alive
                   and worker.ready):
                if worker.budget == 0:
                    if not worker.batches:
                        worker.stopping = True
                        worker.ring.put((worker.acknowledged,))
                        worker.ring.put(None)
                    break
                batch = self._next_batch(worker)
                if batch is None:
                    self._hungry = True
                    return
                self._send(worker, batch)

    def _window(self):
        """How many batches a worker may hold. A second one, waiting in its ring, saves the worker
        a round trip to the parent per batch: worth it for short tasks. For long ones that saving
        is a small share of the time, and an executor's call sent is a future no longer
        cancellable (the standard executor holds max_workers + 1 calls in its call queue): for
        those, and until a task time is known, a worker holds one batch, so the calls sent are
        the ones running. (A Pool's tasks cannot be cancelled: they keep two.)"""
        task_ns = self._task_ns
        if task_ns is not None and task_ns < _LONG_TASK_NS:
            return _IN_FLIGHT
        jobs = self._jobs
        if jobs and getattr(jobs[0].sink, "_cancel", None) is not None:
            return 1
        return _IN_FLIGHT

    def _batch_size(self, job):
        if job.chunksize is not None:
            return job.chunksize
        if self._task_ns is None:
            size = 4
        else:
            size = max(1, min(_MAX_BATCH, int(_BATCH_TARGET_NS / max(self._task_ns, 1))))
        if job.length is not None:
            left = job.length - job.next_index
            size = min(size, max(1, left // (2 * self._processes)))
        if job.timeout is not None:
            size = min(size, 4)
        return size

    def _next_batch(self, worker):
        limit = worker.budget      # maxtasksperchild; None: no limit but the batch size
        if self._requeued:
            job, index, item, attempt = self._requeued.popleft()
            return Batch(next(worker.batch_numbers), self._take_seqs(1), [job], [index], [item],
                          [attempt], job.kind, job.func)
        while self._jobs:
            job = self._jobs[0]
            if job.dropped:
                self._jobs.popleft()
                continue
            if job.kind == _w.APPLY:
                return self._apply_batch(worker, limit)
            if job.exhausted:
                self._jobs.popleft()
                self._finish_input(job)
                continue
            size = self._batch_size(job)
            items = job._take(size if limit is None else min(limit, size))
            if job.input_error is not None:
                # As multiprocessing: with chunks, the error takes the place of its whole chunk.
                keep = items and job.chunksize is None
                batch = self._batch_of(worker, job, items) if keep else None
                self._input_failed(job)
                if batch is None:
                    continue
                return batch
            if not items:
                if job.exhausted:
                    self._jobs.popleft()
                    self._finish_input(job)
                    continue
                # A buffered job waiting for its consumer: let later jobs go first.
                self._jobs.rotate(-1)
                if all(j.buffersize is not None and not j.exhausted and
                       j.next_index >= j.consumed + j.buffersize for j in self._jobs):
                    return None
                continue
            return self._batch_of(worker, job, items)
        return None

    def _batch_of(self, worker, job, items):
        first = job.next_index
        job.next_index += len(items)
        job.pending += len(items)
        if job.length is not None and job.next_index >= job.length and self._jobs[0] is job:
            # Done with its input: drop it now, so the input is not kept alive by the pool.
            job.exhausted = True
            self._jobs.popleft()
            job.source = None
        seq = self._take_seqs(len(items))
        return Batch(next(worker.batch_numbers), seq, job, first, items, None, job.kind,
                      job.func)

    def _take_seqs(self, count):
        first = self._next_seq
        self._next_seq += count
        return first

    def _input_failed(self, job):
        """The input iterator raised: that position fails, and the job ends there."""
        error, job.input_error = job.input_error, None
        job.exhausted = True
        job.source = None
        if self._jobs and self._jobs[0] is job:
            self._jobs.popleft()
        job.pending += 1
        position = job.next_index
        job.next_index += 1
        self._finish_input(job)
        self._fail(job, position, error)

    def _apply_batch(self, worker, limit):
        """Consecutive apply/submit jobs, one task each, in one batch."""
        size = max(1, self._batch_size_for_applies())
        if limit is not None:
            size = min(limit, size)
        jobs: list = []
        items: list = []
        while self._jobs and len(items) < size:
            job = self._jobs[0]
            if job.kind != _w.APPLY:
                break
            self._jobs.popleft()
            if job.dropped or not job.sink._start():
                continue
            jobs.append(job)
            items.append(job.source)
            # The batch holds the arguments now (a retry takes them from there): a finished
            # future or AsyncResult does not keep them alive, as the standard library's do not.
            job.source = None
            if job.timeout is not None:
                break
        if not items:
            return self._next_batch(worker) if self._jobs else None
        seq = self._take_seqs(len(items))
        return Batch(next(worker.batch_numbers), seq, jobs, [0] * len(jobs), items, None,
                      _w.APPLY, None)

    def _batch_size_for_applies(self):
        if self._task_ns is None:
            return 1          # until a task time is known, send work only as workers free up
        # At most an even share of the waiting calls per batch in the workers' windows: a call
        # left here can still be cancelled, one sent is running.
        waiting = len(self._jobs)
        return max(1, min(_MAX_BATCH, int(_BATCH_TARGET_NS / max(self._task_ns, 1)),
                          waiting // (_IN_FLIGHT * self._processes) or 1))

    def _finish_input(self, job):
        if job.length is None:
            job.length = job.next_index
            sink = job.sink
            if hasattr(sink, "_set_length"):
                sink._set_length(job.length)
            if job.progress is not None:
                job.progress.set_total(job.length)

    def _send(self, worker, batch):
        if batch.kind == _w.APPLY:
            payload_items = [(job.func, args, kwargs)
                             for job, (args, kwargs) in zip(batch.jobs, batch.items)]
            func = None
        else:
            payload_items = batch.items
            func = batch.func
        message = (worker.acknowledged, batch.number, batch.kind, func, batch.first_seq,
                   payload_items, batch.mode)
        try:
            worker.ring.put(message)
        except Exception:
            self._send_separately(worker, batch, payload_items, func)
            return
        if worker.budget is not None:
            worker.budget -= len(batch.items)
        worker.batches.append(batch)

    def _send_separately(self, worker, batch, payload_items, func):
        """A batch did not pickle: fail the tasks whose function or arguments do not, resend the
        others one by one."""
        for offset, item in enumerate(batch.items):
            job = batch.job(offset)
            try:
                pickle.dumps((func, payload_items[offset]), 5)
            except Exception as exc:
                self._fail(job, batch.index(offset), exc)
                continue
            self._requeued.appendleft((job, batch.index(offset), item, batch.attempt(offset)))

    # -- deaths and timeouts ----------------------------------------------------------------------

    def _worker_died(self, worker):
        process = worker.process
        process.join(0)
        exitcode = process.exitcode
        if exitcode is None:
            return
        worker.alive = False
        self._forget_worker(worker)
        self._drain_results()
        if worker.batches:
            self._recover_tasks(worker, process.pid, exitcode)
        if self.state == TERMINATE:
            return
        if _compat.process_is_exiting():
            # multiprocessing's exit function is terminating the daemonic children, the workers
            # among them: a replacement would outlive that, and the exit would wait for it forever.
            self.state = TERMINATE
            return
        if self.state == CLOSE and self._idle():
            return
        worker.restarts += 1
        self._replace(worker)

    def _replace(self, worker):
        self._start_worker(worker)

    def _recover_tasks(self, worker, pid, exitcode):
        """After a death: the task that was running is lost (or retried); the others never started,
        or finished with their results still in the dead worker's batch, and run again."""
        base = worker.slot * _w.RECORD_FIELDS
        running_seq = self._record[base + _w.FIELD_SEQ]
        was_running = self._record[base + _w.FIELD_STARTED] != 0
        self._record[base + _w.FIELD_STARTED] = 0
        if exitcode < 0:
            how = f"was killed by {signal_name(-exitcode)}"
        else:
            how = f"exited with code {exitcode}"
        again = []
        for batch in worker.batches:
            for offset in range(batch.received, len(batch.items)):
                seq = batch.first_seq + offset
                job = batch.job(offset)
                index = batch.index(offset)
                item = batch.items[offset]
                retries_used, bounces = batch.attempt(offset)
                if worker.timed_out == seq:
                    continue            # already failed with TaskTimeoutError
                if (was_running and batch.mode == _w.RUNS
                        and running_seq <= seq < running_seq + _w.RUN_LENGTH):
                    # The record names the run, not the task: run each of its tasks again on
                    # its own, where the one that kills its worker is named.
                    again.append((job, index, item, (retries_used, bounces + 1)))
                    continue
                if seq != running_seq or not was_running:
                    if bounces + 1 >= _BOUNCE_LIMIT:
                        self._lost(job, index, item, pid, exitcode,
                                   f"workers kept dying around it; the last one {how}")
                    else:
                        again.append((job, index, item, (retries_used, bounces + 1)))
                elif retries_used < self.retries:
                    again.append((job, index, item, (retries_used + 1, bounces)))
                else:
                    self._lost(job, index, item, pid, exitcode, f"{how} while running it")
        worker.batches.clear()
        self._requeued.extendleft(reversed(again))

    def _lost(self, job, index, item, pid, exitcode, what):
        task = short_repr(item)
        position = "" if job.kind == _w.APPLY else f" (index {index})"
        exc = WorkerLostError(f"the worker (pid {pid}) running task{position} with arguments "
                              f"{task} {what}", pid, exitcode, index, task)
        self._fail(job, index, exc)

    def _enforce_timeouts(self):
        """Kill workers whose task ran past its timeout; the seconds until the next check."""
        now = time.monotonic_ns()
        nearest = None
        for worker in self._workers:
            if not worker.batches or worker.stopping or worker.timed_out is not None:
                continue
            base = worker.slot * _w.RECORD_FIELDS
            seq = self._record[base + _w.FIELD_SEQ]
            started = self._record[base + _w.FIELD_STARTED]
            batch, offset = find_task(worker.batches, seq)
            if batch is None or not started:
                # The next task has not started: it cannot end before its whole timeout.
                job = worker.batches[0].job(worker.batches[0].received)
                if job.timeout is not None:
                    wait = job.timeout
                    nearest = wait if nearest is None else min(nearest, wait)
                continue
            job = batch.job(offset)
            if job.timeout is None:
                continue
            left = job.timeout - (now - started) / 1e9
            if left > 0:
                nearest = left if nearest is None else min(nearest, left)
                continue
            worker.timed_out = seq
            try:
                os.kill(worker.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            index = batch.index(offset)
            task = short_repr(batch.items[offset])
            self._fail(job, index, TaskTimeoutError(
                f"task{'' if job.kind == _w.APPLY else f' (index {index})'} with arguments "
                f"{task} ran past its timeout of {job.timeout} s; its worker "
                f"(pid {worker.process.pid}) was killed", job.timeout, index, task))
        return nearest
