"""Handing a numpy array to a running child over a multiprocessing Pipe: a plain ndarray travels
as its bytes, a shmproc shared array (shmproc.ndarray) as a handle of ~150 bytes, so its time should
not grow with the size (the target: constant time for 256 MB). Also the cost of making shared
arrays. The hand-off workload is defined here and only here (asv_bench/compare_sharedctypes.py
imports it).
"""
import pickle
import time

import numpy as np

from .common import FORK, JOIN_TIMEOUT, LIBRARIES, side_by_side_ratio

SIZES_MB = [1, 16, 256]


def shared_arrays():
    """shmproc.ndarray; NotImplementedError (asv: skipped) when this commit has none."""
    try:
        import shmproc.ndarray as ndarray
    except ImportError:
        raise NotImplementedError("shmproc.ndarray is not available in this version") from None
    return ndarray


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
        self.child.join(JOIN_TIMEOUT)
        if self.child.is_alive():
            self.child.kill()
            self.child.join()
        self.connection.close()


def pickled_size(array):
    return len(pickle.dumps(array, protocol=pickle.HIGHEST_PROTOCOL))


def array_for(library, megabytes):
    ndarray = shared_arrays()
    plain = np.ones(megabytes << 20, dtype=np.uint8)
    return ndarray.asshared(plain) if library == "shmproc" else plain


class ArrayToChild:
    """Seconds for one hand-off: send, the child unpickles and touches the array, acknowledges."""
    params = [list(LIBRARIES), SIZES_MB]
    param_names = ["library", "megabytes"]
    unit = "seconds"
    timeout = 180

    def setup(self, library, megabytes):
        self.array = array_for(library, megabytes)
        self.handoff = ArrayHandoff()

    def teardown(self, library, megabytes):
        self.handoff.close()

    def track_handoff(self, library, megabytes):
        samples = sorted(self.handoff.seconds(self.array) for _ in range(3))
        return samples[1]



class PickledSize:
    """Bytes an array pickles to: its data for a plain one, a handle for a shared one. A class of
    its own, with the unit on the class: inside ArrayToChild (unit "seconds") the dashboard showed
    these byte counts as durations (1 MB as "1.734w")."""
    params = [list(LIBRARIES), SIZES_MB]
    param_names = ["library", "megabytes"]
    unit = "bytes"

    def setup(self, library, megabytes):
        self.array = array_for(library, megabytes)

    def track_pickled_bytes(self, library, megabytes):
        return pickled_size(self.array)


class SharedOverPlainHandoff:
    """A 256 MB shared array's hand-off time over a plain one's, interleaved (unit "ratio")."""
    unit = "ratio"
    timeout = 180

    def setup(self):
        shared_arrays()
        self.shared, self.plain = array_for("shmproc", 256), array_for("multiprocessing", 256)
        self.handoff = ArrayHandoff()

    def teardown(self):
        self.handoff.close()

    def track_256_mb(self):
        return side_by_side_ratio(lambda: self.handoff.seconds(self.shared),
                                  lambda: self.handoff.seconds(self.plain), repeat=3)


class SharedArrayCreation:
    params = [[1, 16]]
    param_names = ["megabytes"]

    def setup(self, megabytes):
        self.ndarray = shared_arrays()

    def time_zeros(self, megabytes):
        self.ndarray.zeros(megabytes << 20, np.uint8)

    def time_asshared(self, megabytes):
        self.ndarray.asshared(np.ones(megabytes << 20, np.uint8))
