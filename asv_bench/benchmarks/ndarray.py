"""Handing a numpy array to a running child over a multiprocessing Pipe: a plain ndarray travels
as its bytes, a shmproc shared array (shmproc.ndarray) as a handle of ~150 bytes, so its time should
not grow with the size (issue 2: constant time for 256 MB). Also the cost of making shared arrays.
"""
import numpy as np

from .common import LIBRARIES, side_by_side_ratio

SIZES_MB = [1, 16, 256]


def measurements():
    try:
        import shmproc.ndarray as ndarray
        from shmproc.bench.sharedctypes import ArrayHandoff, pickled_size
    except ImportError:
        raise NotImplementedError("shmproc.ndarray is not available in this version") from None
    return ndarray, ArrayHandoff, pickled_size


def array_for(library, megabytes):
    ndarray = measurements()[0]
    plain = np.ones(megabytes << 20, dtype=np.uint8)
    return ndarray.asshared(plain) if library == "shmproc" else plain


class ArrayToChild:
    """Seconds for one hand-off: send, the child unpickles and touches the array, acknowledges."""
    params = [list(LIBRARIES), SIZES_MB]
    param_names = ["library", "megabytes"]
    unit = "seconds"
    timeout = 180

    def setup(self, library, megabytes):
        _, ArrayHandoff, _ = measurements()
        self.array = array_for(library, megabytes)
        self.handoff = ArrayHandoff()

    def teardown(self, library, megabytes):
        self.handoff.close()

    def track_handoff(self, library, megabytes):
        samples = sorted(self.handoff.seconds(self.array) for _ in range(3))
        return samples[1]

    def track_pickled_bytes(self, library, megabytes):
        return measurements()[2](self.array)

    track_pickled_bytes.unit = "bytes"


class SharedOverPlainHandoff:
    """A 256 MB shared array's hand-off time over a plain one's, interleaved (unit "ratio")."""
    unit = "ratio"
    timeout = 180

    def setup(self):
        _, ArrayHandoff, _ = measurements()
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
        self.ndarray = measurements()[0]

    def time_zeros(self, megabytes):
        self.ndarray.zeros(megabytes << 20, np.uint8)

    def time_asshared(self, megabytes):
        self.ndarray.asshared(np.ones(megabytes << 20, np.uint8))
