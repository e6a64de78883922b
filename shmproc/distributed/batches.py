"""A batch of tasks as one Dask task: encoded here, run on a worker by ``run_batch``.

A batch is ``(header, tasks)`` pickled once into bytes (protocol 5): the header names the pool (so
its initializer runs once per worker process) and tasks is a list of ``(func, args, kwargs)``. The
function is pickled by reference as multiprocessing does, and with cloudpickle (Dask's own choice)
when that fails, so a lambda works as it does on Dask. One Dask task per batch: Dask's cost of about
a millisecond per task is paid once per batch, not once per call of the function.

Shared ndarrays inside the arguments: when every worker attaches this process's memory, each goes
as its handle, inline; otherwise each becomes a placeholder that names an entry of
``array_keys``, the Dask keys under which the array was placed on each worker (shared_arrays.py),
and on the worker the placeholder turns back into that worker's own copy or mapping.

The result is ``(worker address, seconds, bytes)``: the time the tasks took (to size the next batches) and the
pickled list of ``(success, value)``; an exception carries its traceback as multiprocessing's does
(``RemoteTraceback`` as ``__cause__``). Arrays go back by value: a handle to a worker's memory
would outlive the worker's hold on it.
"""
import io
import pickle
import threading
import time
from collections import ChainMap
from multiprocessing.pool import ExceptionWithTraceback, MaybeEncodingError  # type: ignore[attr-defined]

import cloudpickle
import numpy as np
from distributed import get_worker

from shmproc import ndarray as _ndarray
from shmproc.ndarray import SharedNDArray, _block_of

__all__ = ["ArgumentNotHere", "decode_results", "encode_batch", "run_batch"]

_current = threading.local()          # the arrays of the batch being decoded in this thread
_initialized: set = set()                  # pools whose initializer ran in this process
_initializer_lock = threading.Lock()


class ArgumentNotHere(LookupError):
    """The worker running a batch has no copy of one of its shared arrays (it joined after the
    array was placed, or replaced a dead worker): the pool places the array again and resubmits."""

    def __init__(self, worker):
        super().__init__(f"worker {worker} has no copy of a shared array argument")
        self.worker = worker

    def __reduce__(self):
        return type(self), (self.worker,)


def _shared_argument(index):
    return _current.arrays[index]


def placeholder(index):
    """How a shared array placed on the workers is pickled: the index of its placement."""
    return _shared_argument, (index,)


def _attach_here(*handle):
    try:
        return _ndarray._attach(*handle)
    except OSError as exc:
        raise ArgumentNotHere(get_worker().address) from exc


def by_handle(array):
    """How a shared array is pickled when every worker attaches this process's memory: its
    handle, inline (a worker that turns out unable fails the batch with ArgumentNotHere)."""
    reducer, arguments = array.__reduce_ex__(5)[:2]
    if reducer is _ndarray._attach:
        return _attach_here, arguments
    return reducer, arguments


def _plain_array(array):
    return array.view(np.ndarray).__reduce_ex__(5)


def encode_batch(header, tasks, place):
    """The batch as bytes. ``place(array)`` returns how a shared array is pickled: by_handle()
    or placeholder()."""
    def shared_by_placeholder(array):
        if _block_of(array) is None:          # a result of numpy math: an ordinary array
            return _plain_array(array)
        return place(array)

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.dispatch_table = {SharedNDArray: shared_by_placeholder}
    try:
        pickler.dump((header, tasks))
    except (pickle.PicklingError, AttributeError, TypeError):
        buffer = io.BytesIO()
        pickler = cloudpickle.Pickler(buffer, protocol=5)
        pickler.dispatch_table = ChainMap({SharedNDArray: shared_by_placeholder},
                                          cloudpickle.Pickler.dispatch_table)
        pickler.dump((header, tasks))
    return buffer.getvalue()


def _local_arrays(worker, array_keys):
    arrays = []
    for keys in array_keys:
        key = keys.get(worker.address)
        if key is None or key not in worker.data:
            raise ArgumentNotHere(worker.address)
        arrays.append(worker.data[key].array)
    return arrays


def _initialize(header):
    pool_token, initializer, initargs = header
    if initializer is None or pool_token in _initialized:
        return
    with _initializer_lock:
        if pool_token not in _initialized:
            initializer(*initargs)
            _initialized.add(pool_token)


def run_batch(payload, array_keys):
    """Run on a worker: every task of the batch, each failing alone."""
    worker = get_worker()
    _current.arrays = _local_arrays(worker, array_keys)
    try:
        header, tasks = pickle.loads(payload)
    finally:
        _current.arrays = None
    _initialize(header)
    results = []
    started = time.perf_counter()
    for func, args, kwargs in tasks:
        try:
            results.append((True, func(*args, **kwargs)))
        except BaseException as exc:
            results.append((False, ExceptionWithTraceback(exc, exc.__traceback__)))
    return worker.address, time.perf_counter() - started, _encode_results(results)


def _dumps_by_value(obj):
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.dispatch_table = {SharedNDArray: _plain_array}
    pickler.dump(obj)
    return buffer.getvalue()


def _encode_results(results):
    try:
        return _dumps_by_value(results)
    except Exception:        # some value cannot be pickled: find it and fail its task alone
        return _dumps_by_value([_picklable(success, value) for success, value in results])


def _picklable(success, value):
    try:
        _dumps_by_value(value)
    except Exception as exc:
        return False, MaybeEncodingError(exc, value)
    return success, value


def decode_results(data):
    return pickle.loads(data)
