"""The engine behind ClusterPool and ClusterExecutor: the local engine's interface on Dask.

Shape:
- a call (a Job of shmproc.pool_engine) is cut into batches, each one Dask task (batches.py);
  the batch size is learnt from the time tasks take on the workers, so that a batch lasts about
  _BATCH_TARGET seconds, growing at most _GROWTH times per batch and never so large that the end of
  a call leaves workers idle; an explicit chunksize is kept as given;
- single tasks (apply_async, submit) that queue up while the window is full go out together;
- at most two batches per worker thread are in flight (the window), so the input of imap is read
  lazily and a lost worker costs little;
- everything happens in the caller's thread (submitting) or Dask's callback thread (a batch is
  done: deliver, then submit more), under one lock: no thread of our own, no polling;
- Dask reschedules the batches of a dead worker; a batch that killed its workers Dask's
  allowed-failures times fails its tasks with WorkerLostError (after ``retries`` more tries);
- losing the scheduler cancels every Dask future at once: the tasks fail with SchedulerLostError
  and so does every later call.
"""
import asyncio
import collections
import threading
import uuid

from distributed import KilledWorker

from shmproc import pool_worker as _w
from shmproc.distributed import shared_arrays
from shmproc.distributed.batches import (
    ArgumentNotHere,
    by_handle,
    decode_results,
    encode_batch,
    placeholder,
    run_batch,
)
from shmproc.distributed.clients import connect
from shmproc.distributed.errors import SchedulerLostError
from shmproc.pool import check_callable, check_retries
from shmproc.pool_engine import CLOSE, RUN, TERMINATE, Engine
from shmproc.pool_results import WorkerLostError

__all__ = ["ClusterEngine"]

_BATCH_TARGET = 0.05           # seconds a batch of tiny tasks should take on a worker
_GROWTH = 8                    # a batch is at most this many times the previous one
_MAX_BATCH = 1 << 16
_IN_FLIGHT_PER_THREAD = 2
_PLACEMENT_RETRIES = 3         # a batch re-placed for a worker without its arrays, at most


class _Placement:
    """One shared array of a call, placed on the workers: Dask futures keep the copies alive."""

    __slots__ = ("array", "futures", "keys")

    def __init__(self, array, futures):
        self.array = array                       # held: the workers attach from this process
        self.futures = futures                   # None: every worker attaches, a handle goes
        self.keys = {worker: future.key for worker, future in (futures or {}).items()}


class _Batch:
    __slots__ = ("future", "parts", "placements", "size", "tries")

    def __init__(self, parts):
        self.parts = parts            # [(job, first index, items)]
        self.size = sum(len(items) for _, _, items in parts)
        self.placements = []          # [_Placement], in placeholder order
        self.tries = 0
        self.future = None


class ClusterEngine:
    def __init__(self, connection, initializer, initargs, retries=0):
        self.connection = connection
        self.client = connection.client
        self.state = RUN
        self.pool = []
        self._header = (uuid.uuid4().hex, initializer, tuple(initargs))
        self._retries = retries
        self._lock = threading.RLock()
        self._quiet = threading.Condition(self._lock)
        self._jobs: collections.deque = collections.deque()
        self._in_flight = {}                     # Dask key -> _Batch
        self._per_task = {}                      # job -> seconds per task, as last measured
        self._last_size = {}                     # job -> size of its last batch
        self._placements = {}                    # job -> {id(array): _Placement}
        self._workers = None                     # worker addresses, as last seen
        self._broken = None
        self._released = False
        self._done: collections.Counter = collections.Counter()    # worker -> tasks done
        self._busy: collections.Counter = collections.Counter()    # worker -> seconds in tasks
        self._threads = self._count_threads()

    @classmethod
    def start(cls, cluster, processes, initializer, initargs, retries, security, insecure):
        """Check the pool's options, connect to ``cluster=`` and make the engine."""
        if initializer is not None:
            check_callable(initializer, "initializer")
        retries = check_retries(retries)
        connection = connect(cluster, processes, security=security, insecure=insecure)
        try:
            return cls(connection, initializer, tuple(initargs), retries)
        except BaseException:
            connection.close()
            raise

    # -- the local engine's interface ---------------------------------------------------------

    def submit(self, job):
        if job.timeout is not None:
            raise ValueError("task_timeout is not supported with cluster= (a Dask worker cannot "
                             "stop one task without stopping the others)")
        self._check_connected()
        with self._lock:
            self._jobs.append(job)
            self._pump()

    # imap-like calls: the local engine's own method (it needs only submit() and consumed()).
    submit_iteration = Engine.submit_iteration

    def consumed(self, job, count):
        with self._lock:
            job.consumed += count
            if job.buffersize is not None:
                self._pump()

    def cancel_pending(self):
        """The executor's shutdown(cancel_futures=True): calls not sent yet are cancelled."""
        with self._lock:
            for job in [job for job in self._jobs if job.kind == _w.APPLY]:
                self._jobs.remove(job)
                job.sink._cancel()
            self._quiet.notify_all()

    def close(self):
        with self._lock:
            if self.state == RUN:
                self.state = CLOSE

    def terminate(self):
        with self._lock:
            self.state = TERMINATE
            batches = list(self._in_flight.values())
            futures = [batch.future for batch in batches]
            self._in_flight.clear()
            error = RuntimeError("the pool was terminated before this task finished")
            for batch in batches:
                self._fail_batch(batch, error)
            while self._jobs:
                job = self._jobs.popleft()
                self._fail_rest(job, error)
            self._placements.clear()
            self._quiet.notify_all()
        if futures and self.client.status == "running":
            self.client.cancel(futures)

    def join(self):
        with self._lock:
            self._quiet.wait_for(lambda: self.state == TERMINATE or
                                 (not self._jobs and not self._in_flight))

    def release(self):
        with self._lock:
            if self._released:
                return
            self._released = True
        self.connection.close()

    def repopulate(self):
        """Dask replaces workers itself."""

    def stats(self):
        """Per Dask worker: tasks done and seconds spent in them, as the workers measured."""
        with self._lock:
            return [{"worker": worker, "tasks": self._done[worker], "busy": self._busy[worker]}
                    for worker in sorted(self._done)]

    # -- sending ------------------------------------------------------------------------------

    def _check_connected(self):
        if self._broken is not None:
            raise SchedulerLostError(str(self._broken))
        if self.client.status not in ("running", "newly-created"):
            self._broken = SchedulerLostError(
                f"lost the connection to the Dask scheduler at {self.connection.address} "
                f"(client status: {self.client.status})")
            raise self._broken

    def _count_threads(self):
        nthreads = self.client.nthreads()
        return max(1, sum(nthreads.values()))

    def _batch_size(self, job):
        if job.chunksize is not None:
            return job.chunksize
        per_task = self._per_task.get(job)
        if per_task is None:
            return 1
        size = int(_BATCH_TARGET / max(per_task, 1e-7))
        size = min(size, self._last_size.get(job, 1) * _GROWTH, _MAX_BATCH)
        if job.length is not None:        # leave every worker thread a share of what is left
            left = job.length - job.next_index
            size = min(size, -(-left // (2 * self._threads)))
        return max(1, size)

    def _take_batch(self):
        """The next batch's parts, or None when no job can give input now."""
        for job in list(self._jobs):
            if job.kind == _w.APPLY:
                return self._take_applies(job)
            items = job._take(self._batch_size(job))
            start = job.next_index
            job.next_index += len(items)
            job.pending += len(items)
            if job.input_error is not None:
                self._input_failed(job)
            elif job.exhausted:
                self._end_input(job)
            if items:
                self._last_size[job] = len(items)
                return [(job, start, items)]
        return None

    def _end_input(self, job):
        self._jobs.remove(job)
        self._learn_length(job)

    @staticmethod
    def _learn_length(job):
        """The input ended: an imap's iterator and progress bar learn how many tasks it had."""
        if job.length is None:
            job.length = job.next_index
            job.sink._set_length(job.length)
            if job.progress is not None:
                job.progress.set_total(job.length)

    def _input_failed(self, job):
        """The input iterator raised: as in multiprocessing, that position fails and the call's
        input ends there (the items before it still run)."""
        error, job.input_error = job.input_error, None
        job.exhausted = True
        position = job.next_index
        job.next_index += 1
        self._end_input(job)
        job.sink._set_result(position, False, error)
        if job.progress is not None:
            job.progress.update(1)

    def _take_applies(self, first):
        """The single tasks waiting from ``first`` on, together (they queued up while the window
        was full, so the workers are busy: one Dask task for all of them is cheaper)."""
        waiting = [job for job in self._jobs if job.kind == _w.APPLY]
        parts = []
        for job in waiting[waiting.index(first):][:_MAX_BATCH]:
            self._jobs.remove(job)
            if hasattr(job.sink, "_start") and not job.sink._start():
                continue                          # the executor's future was cancelled
            job.next_index = job.pending = 1
            parts.append((job, 0, [job.source]))
        return parts

    def _pump(self):
        while (self.state != TERMINATE and self._broken is None and
               len(self._in_flight) < _IN_FLIGHT_PER_THREAD * self._threads):
            parts = self._take_batch()
            if parts is None:
                break
            if not parts:
                continue
            self._send(_Batch(parts))
        if not self._jobs and not self._in_flight:
            self._quiet.notify_all()

    def _tasks(self, job, items):
        func = job.func
        if job.kind == _w.MAP:
            return [(func, (item,), {}) for item in items]
        if job.kind == _w.STARMAP:
            return [(func, tuple(item), {}) for item in items]
        return [(func, args, kwargs) for args, kwargs in items]

    def _send(self, batch):
        tasks = []
        for job, _, items in batch.parts:
            tasks.extend(self._tasks(job, items))
        current_job = batch.parts[0][0]

        def place(array):
            placement = self._placement(current_job, array)
            if placement.futures is None:                 # every worker attaches: a handle
                return by_handle(array)
            for index, known in enumerate(batch.placements):
                if known is placement:
                    return placeholder(index)
            batch.placements.append(placement)
            return placeholder(len(batch.placements) - 1)

        try:
            payload = encode_batch(self._header, tasks, place)
        except Exception as exc:             # an argument that cannot be pickled fails its tasks
            self._fail_batch(batch, exc)
            return
        keys = [placement.keys for placement in batch.placements]
        future = self.client.submit(run_batch, payload, keys, pure=False,
                                    key=f"shmproc-batch-{uuid.uuid4().hex}")
        batch.future = future
        self._in_flight[future.key] = batch
        future.add_done_callback(self._on_done)

    def _current_workers(self):
        """The workers as last seen: refreshed when a batch met a worker that lacked one of its
        arrays (a new or replacement worker), so no round trip per call."""
        if self._workers is None:
            self._workers = list(self.client.nthreads())
            shared_arrays.probe_workers(self.client, self._workers)
        return self._workers

    def _placement(self, job, array):
        """The array made reachable from every current worker, once per call: a handle in the
        batch itself when every worker attaches this process's memory, else placed on each
        worker (by handle or by value, as Dask's serializer finds for that worker)."""
        placements = self._placements.setdefault(job, {})
        placement = placements.get(id(array))
        if placement is not None:
            return placement
        workers = self._current_workers()
        if shared_arrays.all_attach(workers, array):
            placement = _Placement(array, None)
        else:
            argument = shared_arrays.SharedArgument(array)

            async def scatter_each():
                futures = await asyncio.gather(*(
                    self.client.scatter(argument, workers=[worker], direct=True, hash=False,
                                        asynchronous=True)
                    for worker in workers))
                return dict(zip(workers, futures))

            placement = _Placement(array, self.client.sync(scatter_each))
        placements[id(array)] = placement
        return placement

    # -- receiving ----------------------------------------------------------------------------

    def _on_done(self, future):
        with self._lock:
            batch = self._in_flight.pop(future.key, None)
            if batch is None:                # terminated meanwhile
                return
            try:
                self._settle(batch, future)
            finally:
                self._forget_finished(batch)
                self._pump()

    def _settle(self, batch, future):
        status = future.status
        if status == "finished":
            try:
                worker, seconds, data = future.result()
                results = decode_results(data)
            except Exception as exc:
                self._fail_batch(batch, exc)
                return
            self._learn(batch, worker, seconds)
            self._deliver(batch, results)
            return
        if status == "error":
            error = future.exception()
            if isinstance(error, ArgumentNotHere) and batch.tries < _PLACEMENT_RETRIES:
                batch.tries += 1
                self._workers = None
                for job, _, _ in batch.parts:
                    self._placements.pop(job, None)
                self._resend(batch)
                return
            if isinstance(error, KilledWorker):
                if batch.tries < self._retries:
                    batch.tries += 1
                    self._resend(batch)
                    return
                error = WorkerLostError(
                    f"the Dask workers running these tasks died ({error}); Dask gave up on them "
                    "after its allowed-failures (distributed.scheduler.allowed-failures)")
            self._fail_batch(batch, error)
            return
        if self.client.status != "running":
            self._broken = SchedulerLostError(
                f"lost the connection to the Dask scheduler at {self.connection.address}; "
                "the tasks that were running are lost")
            self._fail_batch(batch, self._broken)
            self._fail_everything(self._broken)
        else:
            self._fail_batch(batch, RuntimeError(f"the Dask task of this batch was cancelled "
                                                 f"({status})"))

    def _resend(self, batch):
        parts = batch.parts
        tries = batch.tries
        batch.__init__(parts)
        batch.tries = tries
        self._send(batch)

    def _learn(self, batch, worker, seconds):
        per_task = seconds / batch.size
        for job, _, _ in batch.parts:
            self._per_task[job] = per_task
        self._done[worker] += batch.size
        self._busy[worker] += seconds

    def _deliver(self, batch, results):
        offset = 0
        for job, start, items in batch.parts:
            count = len(items)
            part = results[offset:offset + count]
            offset += count
            sink = job.sink
            if hasattr(sink, "_set_results") and all(success for success, _ in part):
                sink._set_results(start, [value for _, value in part])
            else:
                for index, (success, value) in enumerate(part, start):
                    sink._set_result(index, success, value)
            job.pending -= count
            if job.progress is not None:
                job.progress.update(count)

    def _fail_batch(self, batch, exc):
        for job, start, items in batch.parts:
            for index in range(start, start + len(items)):
                job.sink._set_result(index, False, exc)
            job.pending -= len(items)
            if job.progress is not None:
                job.progress.update(len(items))

    def _fail_rest(self, job, exc):
        """Every task of a job not taken yet fails (the pool is gone or broken)."""
        if job.kind == _w.APPLY:
            job.sink._set_result(0, False, exc)
            return
        items = job._take(_MAX_BATCH) if job.buffersize is None else []
        while items:
            for index in range(job.next_index, job.next_index + len(items)):
                job.sink._set_result(index, False, exc)
            job.next_index += len(items)
            items = job._take(_MAX_BATCH)
        if job.length is None:
            self._learn_length(job)
        elif job.next_index < job.length:
            for index in range(job.next_index, job.length):
                job.sink._set_result(index, False, exc)

    def _fail_everything(self, exc):
        batches = list(self._in_flight.values())
        self._in_flight.clear()
        for batch in batches:
            self._fail_batch(batch, exc)
        while self._jobs:
            self._fail_rest(self._jobs.popleft(), exc)
        self._placements.clear()
        self._quiet.notify_all()

    def _forget_finished(self, batch):
        for job, _, _ in batch.parts:
            if job.exhausted and job.pending == 0:
                self._placements.pop(job, None)
                self._per_task.pop(job, None)
                self._last_size.pop(job, None)

