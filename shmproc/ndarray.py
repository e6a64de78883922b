"""numpy arrays in shared memory that reach other processes by reference.

``empty``, ``zeros`` and ``asshared`` return a SharedNDArray: a real, writable ``numpy.ndarray``
over a shmproc Block. Pickling one (a Process argument, a queue item) sends only the Block's handle,
the byte offset of the first element, shape, dtype and strides, so handing a 256 MB array to a child
takes as long as handing it a 1 MB one, and both processes then see the same memory. Views and
slices whose data lies inside the block travel the same way. An array whose data is not in shared
memory (``a + 1`` is a SharedNDArray too, as numpy makes results of the subclass) pickles as an
ordinary ndarray copy: the data pointer is checked when it is pickled.

Through a shmproc queue or pipe the array outlives its sender: a worker may put it and return
(docs/internals/handles.md); pickled any other way, the sender keeps it alive until the receiver
has it.
"""
import math
import operator

import numpy as np
from numpy.lib.array_utils import byte_bounds

from shmproc import _core

__all__ = ["SharedNDArray", "asshared", "empty", "zeros"]


class SharedNDArray(np.ndarray):
    """An ndarray whose data lives in a shmproc Block, pickled by reference."""

    def __reduce_ex__(self, protocol):
        block = _block_of(self)
        if block is not None:
            if self.size == 0:
                return (empty, (self.shape, self.dtype))
            low, high = byte_bounds(self)
            start = block.address
            if start <= low and high <= start + block.size:
                offset = self.__array_interface__["data"][0] - start
                return (_attach, (block.handle(), offset, self.shape, self.dtype, self.strides))
        return self.view(np.ndarray).__reduce_ex__(protocol)


def _block_of(array):
    """The Block at the end of the array's chain of bases, or None. An array made over a block has
    the block as its base and views lead back to it; numpy's results (`a + 1`) own their data and
    so lead nowhere. Found when needed rather than carried by every view: an __array_finalize__
    written in Python would triple the cost of `a[i]`."""
    base = array.base
    while base is not None:
        if type(base) is _core.Block:
            return base
        if isinstance(base, memoryview):
            base = base.obj
        elif isinstance(base, np.ndarray):
            base = base.base
        else:
            return None
    return None


def _attach(handle, offset, shape, dtype, strides):
    return np.ndarray.__new__(SharedNDArray, shape, dtype, buffer=_core.Block.attach(handle),  # type: ignore[arg-type]
                              offset=offset, strides=strides)


def _shape_tuple(shape):
    try:
        return (operator.index(shape),)
    except TypeError:
        return tuple(operator.index(n) for n in shape)


def empty(shape, dtype=float, order="C"):
    """A new shared array (numpy.empty's signature). Its memory is zeroed: shared memory comes so."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise TypeError(f"a shared array cannot hold Python objects (dtype {dtype})")
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', not {order!r}")
    shape = _shape_tuple(shape)
    if any(n < 0 for n in shape):
        raise ValueError("negative dimensions are not allowed")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > np.iinfo(np.intp).max:
        raise ValueError(f"array is too big: {nbytes} bytes")
    return np.ndarray.__new__(SharedNDArray, shape, dtype, buffer=_core.allocate(nbytes),  # type: ignore[arg-type]
                                order=order)


def zeros(shape, dtype=float, order="C"):
    """A new shared array filled with zeros (numpy.zeros's signature)."""
    return empty(shape, dtype, order)


def asshared(array):
    """`array` in shared memory: itself if it already is there, else a copy made once (keeping
    Fortran order when the input has it)."""
    if isinstance(array, SharedNDArray) and _block_of(array) is not None:
        return array
    array = np.asarray(array)
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    shared = empty(array.shape, array.dtype, order)
    np.copyto(shared, array)
    return shared
