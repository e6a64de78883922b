"""Shared numpy arrays: real ndarrays in shared memory that reach other processes by reference."""
import copy
import multiprocessing
import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import support_sharedctypes as support
from support_sharedctypes import JOIN, finish, run

import shmproc.ndarray as shared
from shmproc.ndarray import SharedNDArray


def roundtrip(array):
    return pickle.loads(pickle.dumps(array, protocol=5))


# --- creation -------------------------------------------------------------------------------

def test_empty_zeros_and_asshared_are_writable_ndarrays():
    for array in (shared.empty((3, 4), np.int16), shared.zeros(5), shared.asshared([[1, 2], [3, 4]])):
        assert isinstance(array, np.ndarray) and type(array) is SharedNDArray
        assert array.flags.writeable and array.flags.c_contiguous
    assert shared.zeros(5).dtype == np.float64
    assert not shared.zeros((100, 100), np.int64).any()
    assert shared.asshared(np.arange(6).reshape(2, 3)).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_asshared_of_a_shared_array_is_itself():
    array = shared.zeros(4)
    assert shared.asshared(array) is array
    view = array[1:]
    assert shared.asshared(view) is view
    result = array + 1
    assert shared.asshared(result) is not result


def test_fortran_order_is_kept():
    array = shared.empty((3, 4), np.float32, order="F")
    assert array.flags.f_contiguous and not array.flags.c_contiguous
    copied = shared.asshared(np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    assert copied.flags.f_contiguous
    clone = roundtrip(copied)
    assert clone.flags.f_contiguous and clone.tolist() == copied.tolist()
    clone[2, 3] = -1
    assert copied[2, 3] == -1


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32,
                                   np.float64, np.complex64, np.complex128, np.bool_, "S5", "U3",
                                   "datetime64[ns]", ">i4",
                                   [("name", "S8"), ("point", "f4", (2,)), ("z", "c16")]])
def test_dtype_variety_roundtrips_by_reference(dtype):
    array = shared.zeros((2, 3), dtype)
    array.view(np.uint8)[...] = np.arange(array.nbytes, dtype=np.uint8).reshape(2, -1)
    clone = roundtrip(array)
    assert type(clone) is SharedNDArray and clone.dtype == np.dtype(dtype)
    assert clone.tobytes() == array.tobytes()
    clone.view(np.uint8)[1, -1] ^= 0xFF
    assert array.tobytes() == clone.tobytes()


def test_zero_size_arrays():
    for shape in (0, (0, 3), (4, 0, 2)):
        array = shared.empty(shape, np.int32)
        assert array.size == 0 and array.shape == np.empty(shape).shape
        clone = roundtrip(array)
        assert type(clone) is SharedNDArray and clone.shape == array.shape
        assert clone.dtype == np.int32
    assert roundtrip(shared.zeros(5)[5:]).shape == (0,)


def test_bad_input():
    with pytest.raises(ValueError, match="negative dimensions"):
        shared.empty(-1)
    with pytest.raises(ValueError, match="negative dimensions"):
        shared.zeros((3, -2))
    with pytest.raises(TypeError, match="Python objects"):
        shared.empty(3, dtype=object)
    with pytest.raises(TypeError, match="Python objects"):
        shared.asshared(np.array([1, "a"], dtype=object))
    with pytest.raises(ValueError, match="too big"):
        shared.empty((2**40, 2**40))
    with pytest.raises(OSError, match="not enough shared memory"):
        shared.empty(2**45, np.uint8)
    with pytest.raises(TypeError):
        shared.empty(2.5)
    with pytest.raises(TypeError):
        shared.empty(3, dtype="not a dtype")
    with pytest.raises(ValueError, match="order"):
        shared.empty(3, order="K")
    assert shared.zeros(3).tolist() == [0.0, 0.0, 0.0], "the allocator still works afterwards"


# --- pickling -------------------------------------------------------------------------------

@pytest.mark.parametrize("dumps", [pickle.dumps, ForkingPickler.dumps])
def test_views_and_slices_pickle_by_reference(dumps):
    array = shared.asshared(np.arange(60, dtype=np.int64).reshape(6, 10))
    for view in (array, array[2:4], array[:, 3], array[::2, ::-3], array.T, array[5, 9:],
                 array.reshape(3, 20)[1:], array.view(np.int32)[1:, ::4]):
        clone = pickle.loads(dumps(view))
        assert type(clone) is SharedNDArray
        assert clone.shape == view.shape and clone.strides == view.strides
        assert np.array_equal(clone, view)
        clone[...] = -np.ones_like(clone)
        assert np.array_equal(view, clone), "the clone must be the same memory"
        array[...] = np.arange(60).reshape(6, 10)


def test_arrays_outside_shared_memory_pickle_as_plain_copies():
    array = shared.asshared(np.arange(10.0))
    for result in (array + 1, array * array, np.sin(array), array.copy(), copy.deepcopy(array),
                   array[::2] + 0, array.astype(np.float32)):
        assert isinstance(result, np.ndarray)
        clone = roundtrip(result)
        assert type(clone) is np.ndarray, type(clone)
        assert np.array_equal(clone, result)
        clone[0] = 99
        assert array[0] == 0


def test_an_array_viewed_from_a_block_by_hand_is_found():
    from shmproc._core import allocate
    array = np.frombuffer(allocate(80), dtype=np.float64).view(SharedNDArray)
    clone = roundtrip(array[2:])
    clone[0] = 4.0
    assert array[2] == 4.0


def test_copies_do_not_share_memory():
    array = shared.zeros(4)
    twin = copy.copy(array)
    twin[0] = 1
    assert array[0] == 0


def test_pickled_size_does_not_depend_on_array_size():
    small, large = shared.zeros(8), shared.zeros(32 << 20, np.uint8)
    assert len(pickle.dumps(large)) < 400
    assert abs(len(pickle.dumps(large)) - len(pickle.dumps(small))) < 16


# --- across processes -----------------------------------------------------------------------

def test_child_writes_into_an_array_passed_as_argument(ctx):
    array = shared.zeros((4, 5), np.float64)
    finish(run(ctx, support.write_into_array, array, (2, 3), 7.5),
           run(ctx, support.write_into_array, array[1:, ::2], (0, 1), -1.0))
    assert array[2, 3] == 7.5
    assert array[1, 2] == -1.0


def test_forkserver_child_writes_into_an_array():
    array = shared.zeros((2, 3), np.int64)
    finish(run(multiprocessing.get_context("forkserver"), support.write_into_array, array.T, (2, 1), 9))
    assert array[1, 2] == 9


def test_child_receives_shared_arrays_over_a_pipe(ctx):
    arrays = [shared.zeros(10, np.int32), shared.zeros((3, 3), np.complex128).T,
              shared.zeros((5, 4), np.uint8, order="F")[1:, 1:], shared.zeros(6, np.float32)[::-2]]
    parent_end, child_end = ctx.Pipe()
    child = run(ctx, support.receive_arrays_and_write, child_end, len(arrays))
    for number, array in enumerate(arrays):
        parent_end.send(array)
        assert parent_end.poll(JOIN), "the child did not answer"
        assert parent_end.recv() == "SharedNDArray"
        assert array[(0,) * array.ndim] == number + 1
    finish(child)


def test_child_sees_type_and_contents(ctx):
    array = shared.asshared(np.arange(12, dtype="<i2").reshape(3, 4) + 5)
    parent_end, child_end = ctx.Pipe()
    finish(run(ctx, support.report_array, array, child_end))
    assert parent_end.recv() == ("SharedNDArray", True, (3, 4), "<i2", [5])


@pytest.mark.stress
def test_a_256_mb_array_reaches_a_child_by_reference(ctx):
    array = shared.zeros(256 << 20, np.uint8)
    assert len(ForkingPickler.dumps(array)) < 400
    last = array.size - 1
    finish(run(ctx, support.write_into_array, array, last, 201),
           run(ctx, support.write_into_array, array[128 << 20:], 0, 202))
    assert array[last] == 201 and array[128 << 20] == 202
    assert array[:128 << 20].max() == 0
