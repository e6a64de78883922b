"""Measurements of shared Values and shared numpy arrays, shared by asv_bench/compare_sharedctypes.py
and the asv suite (asv_bench/benchmarks/sharedctypes.py, ndarray.py).

Processes for both libraries are started the same way (multiprocessing's fork context) so only the
shared object differs. Counting children are pinned one per core: unpinned, the scheduler sometimes
stacks both on one core and a run's figures jump between the two cases.
"""
import pickle
import time

import numpy as np

from shmproc.bench.primitives import FORK, placed, placement, running

__all__ = ["COUNTER_WAYS", "ArrayHandoff", "counter_in_processes", "increment"]

COUNTER_WAYS = ("locked += 1", "with v: += 1", "fetch_add(1)")


def increment(value, times, way):
    """The loop a user writes: multiprocessing's documented `with v.get_lock(): v.value += 1`, the
    same under the wrapper's own `with v:`, or shmproc's lock-free fetch_add."""
    if way == "fetch_add(1)":
        fetch_add = value.fetch_add
        for _ in range(times):
            fetch_add(1)
    elif way == "with v: += 1":
        for _ in range(times):
            with value:
                value.value += 1
    else:
        for _ in range(times):
            with value.get_lock():
                value.value += 1


def _counting_child(value, times, way, go):
    go.wait()
    increment(value, times, way)


def counter_in_processes(library, way, processes=2, times=200_000, layout="apart"):
    """Seconds from the start signal until `processes` children have each incremented one shared
    Value('i') `times` times; checks the exact total."""
    value = library.Value("i", 0)
    go = FORK.Event()
    cpus = placement(layout, processes)
    children = [FORK.Process(target=placed, args=(cpu, _counting_child, value, times, way, go))
                for cpu in cpus]
    with running(children):
        time.sleep(0.05)            # let every child reach go.wait()
        start = time.perf_counter()
        go.set()
        for child in children:
            child.join(60)
        elapsed = time.perf_counter() - start
    if value.value != processes * times:
        raise RuntimeError(f"lost increments: {value.value} != {processes * times}")
    return elapsed


def _receiving_child(connection):
    """Receive arrays until None; touch each one's first and last byte, then acknowledge."""
    while True:
        array = connection.recv()
        if array is None:
            return
        flat = array.reshape(-1).view(np.uint8)
        flat[0] = flat[-1]
        connection.send(len(flat))


class ArrayHandoff:
    """A child that receives arrays over a multiprocessing Pipe. `seconds(array)` is one hand-off:
    send, the child unpickles and touches the array, acknowledges. A plain ndarray travels as its
    bytes, a shmproc shared array as its handle."""

    def __init__(self):
        self.connection, child_end = FORK.Pipe()
        self.child = FORK.Process(target=_receiving_child, args=(child_end,))
        self.child.start()
        child_end.close()

    def seconds(self, array):
        start = time.perf_counter()
        self.connection.send(array)
        self.connection.recv()
        return time.perf_counter() - start

    def close(self):
        self.connection.send(None)
        self.child.join(60)
        if self.child.is_alive():
            self.child.kill()
            self.child.join()
        self.connection.close()


def pickled_size(array):
    return len(pickle.dumps(array, protocol=pickle.HIGHEST_PROTOCOL))
