"""Value, Array, RawValue, RawArray: multiprocessing.sharedctypes' behaviour, shmproc's speed, plus the
atomics of integer Values; in one process and across processes under fork and spawn."""
import ctypes
import multiprocessing
import pickle
import threading
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import support_sharedctypes as support
from hypothesis import given, settings
from hypothesis import strategies as st
from support_sharedctypes import JOIN, finish, run

import shmproc
import shmproc.synchronize
from shmproc import sharedctypes
from shmproc.sharedctypes import Array, RawArray, RawValue, Value

INTEGER_TYPECODES = "bBhHiIlLqQ"
TYPECODES = INTEGER_TYPECODES + "fdcu"
SAMPLE = {"c": b"x", "u": "z", "f": 1.5, "d": 2.25}




def outcome(call):
    """What a call gives: ('ok', result) or ('raises', exception type, message)."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("raises", type(exc), str(exc))


def test_names_and_signatures_match_multiprocessing():
    import inspect
    import multiprocessing.sharedctypes as theirs
    assert sharedctypes.__all__ == theirs.__all__
    for name in theirs.__all__:
        assert inspect.signature(getattr(sharedctypes, name)) == inspect.signature(getattr(theirs, name))
    assert sharedctypes.typecode_to_type == theirs.typecode_to_type


# --- RawValue, RawArray -----------------------------------------------------------------------

@pytest.mark.parametrize("typecode", TYPECODES)
def test_raw_value_is_the_ctypes_type_with_its_initial_value(typecode):
    ctype = sharedctypes.typecode_to_type[typecode]
    zero = RawValue(typecode)
    assert type(zero) is ctype
    assert zero.value == ctype().value
    sample = SAMPLE.get(typecode, 7)
    assert RawValue(typecode, sample).value == sample
    assert RawValue(ctype, sample).value == sample


def test_raw_array_from_size_and_from_initializer():
    zeros = RawArray("d", 5)
    assert isinstance(zeros, ctypes.Array) and zeros._type_ is ctypes.c_double
    assert list(zeros) == [0.0] * 5
    numbers = RawArray(ctypes.c_int, range(4))
    assert list(numbers) == [0, 1, 2, 3]
    assert type(numbers).__name__ == "c_int_Array_4"
    text = RawArray("c", b"hello")
    assert text.value == b"hello"


def test_raw_array_has_the_buffer_protocol_over_shared_memory():
    raw = RawArray("i", [1, 2, 3])
    view = np.frombuffer(raw, dtype=np.int32)
    view[1] = 20
    assert raw[1] == 20
    clone = pickle.loads(pickle.dumps(raw))
    clone[2] = 30
    assert raw[2] == 30


def test_copy_makes_a_new_shared_object():
    raw = RawArray("i", [1, 2])
    twin = sharedctypes.copy(raw)
    twin[0] = 9
    assert list(raw) == [1, 2] and list(twin) == [9, 2]
    pickle.loads(pickle.dumps(twin))[1] = 8
    assert twin[1] == 8


# --- Value, Array: the wrappers -----------------------------------------------------------------

def test_value_repr_and_types_match_multiprocessing():
    for typecode, initial in (("i", 3), ("d", 1.5), ("c", b"x"), ("q", -4)):
        ours, theirs = Value(typecode, initial), multiprocessing.Value(typecode, initial)
        assert repr(ours) == repr(theirs)
        assert type(ours).__name__ == type(theirs).__name__ == "Synchronized"
    assert repr(Value(ctypes.c_bool, True)) == "<Synchronized wrapper for c_bool(True)>"
    array = Array("i", 3)
    assert repr(array).startswith("<SynchronizedArray wrapper for <")
    assert "c_int_Array_3 object at 0x" in repr(array)
    assert type(Array("c", b"ab")).__name__ == "SynchronizedString"


def test_lock_argument_as_in_multiprocessing():
    assert isinstance(Value("i").get_lock(), shmproc.synchronize.RLock)
    assert isinstance(Value("i", lock=None).get_lock(), shmproc.synchronize.RLock)
    assert type(Value("i", 5, lock=False)) is ctypes.c_int
    assert type(Array("i", 2, lock=False)) is ctypes.c_int * 2
    lock = shmproc.Lock()
    assert Value("i", lock=lock).get_lock() is lock
    rlock = shmproc.RLock()
    assert Array("d", 3, lock=rlock).get_lock() is rlock
    for bad in (0, "lock", 3.5):
        expected = outcome(lambda: multiprocessing.Value("i", lock=bad))
        assert expected[:2] == ("raises", AttributeError)
        assert outcome(lambda: Value("i", lock=bad)) == expected
        assert outcome(lambda: Array("i", 2, lock=bad)) == expected


@pytest.mark.parametrize("make_lock", [threading.Lock, threading.RLock, multiprocessing.Lock,
                                       multiprocessing.RLock, shmproc.Lock])
def test_any_lock_with_acquire_and_release_works(make_lock):
    lock = make_lock()
    value = Value("i", 1, lock=lock)
    value.value += 1
    with value:
        assert value.get_obj().value == 2
    array = Array("i", 3, lock=lock)
    array[1] = 5
    assert array[:] == [0, 5, 0]


def test_get_obj_acquire_release_and_with():
    value = Value("i", 4)
    assert type(value.get_obj()) is ctypes.c_int and value.get_obj().value == 4
    assert value.acquire() is True
    assert value.get_lock()._count() == 1
    value.value = 5                         # the RLock is taken again, recursively
    value.release()
    assert value.get_lock()._count() == 0
    with value as entered:
        assert entered is True
        assert value.get_lock()._count() == 1
    assert value.acquire(timeout=0.1) is True
    value.release()


def test_exit_without_enter_raises_like_the_lock():
    for lock, error in ((shmproc.synchronize.RLock(), AssertionError), (shmproc.synchronize.Lock(), ValueError),
                        (multiprocessing.RLock(), AssertionError)):
        value = Value("i", lock=lock)
        with pytest.raises(error):
            value.__exit__(None, None, None)
        with value:
            pass
        assert value.acquire(False) is True
        value.release()


def test_value_takes_the_lock_held_by_another_thread():
    value = Value("i", 0)
    lock = value.get_lock()
    lock.acquire()
    seen = []
    reader = threading.Thread(target=lambda: seen.append(value.value))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive(), ".value must wait for the lock like multiprocessing's"
    value.get_obj().value = 7
    lock.release()
    reader.join(JOIN)
    assert seen == [7]


def test_access_inside_the_held_lock_keeps_its_count():
    value, array = Value("i", 1), Array("i", 2)
    with value.get_lock():
        value.value += 1
        assert value.get_lock()._count() == 1
    with array:
        array[0] = array[1] + 3
        assert array.get_lock()._count() == 1
    assert value.get_lock()._count() == 0 and array.get_lock()._count() == 0
    assert (value.value, array[:]) == (2, [3, 0])


def test_threads_increment_under_the_lock_exactly():
    value = Value("q", 0)

    def add():
        for _ in range(5000):
            with value.get_lock():
                value.value += 1

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN)
    assert value.value == 20_000


VALUE_ASSIGNMENTS = [0, 1, -1, 127, 128, 255, 256, 2**31, -2**31 - 1, 2**32 + 5, 2**63, 2**64 + 3,
                     -2**70, True, 1.5, "x", None, b"y", np.int64(3), 2.0]


@pytest.mark.parametrize("typecode", TYPECODES)
def test_value_get_and_set_match_multiprocessing(typecode):
    ours, theirs = Value(typecode), multiprocessing.Value(typecode)
    assert ours.value == theirs.value
    for new in VALUE_ASSIGNMENTS + [b"q", "w", 0.1, 1e300, float("inf")]:
        expected = outcome(lambda: setattr(theirs, "value", new))
        got = outcome(lambda: setattr(ours, "value", new))
        assert got[:2] == expected[:2], (typecode, new, got, expected)
        assert ours.value == theirs.value or (ours.value != ours.value and theirs.value != theirs.value)
        assert ours.get_lock()._count() == 0, "a failed assignment must not keep the lock"


def test_everything_reaches_a_forkserver_child():
    forkserver = multiprocessing.get_context("forkserver")
    value, raw, array, counter = Value("i", 0), RawArray("d", 2), Array("q", 3), Value("i", 0)
    finish(run(forkserver, support.set_value, value, 5),
           run(forkserver, support.set_items, raw, [(1, 2.5)]),
           run(forkserver, support.add_to_value_atomically, counter, 10),
           run(forkserver, support.fill_through_numpy, array, 7))
    assert (value.value, raw[:], array[:], counter.value) == (5, [0.0, 2.5], [7, 7, 7], 10)


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double)]


def test_structure_value_has_locked_fields():
    point = Value(Point, 1, 2.5)
    assert type(point).__name__ == "SynchronizedPoint"
    assert (point.x, point.y) == (1, 2.5)
    point.x = 4
    assert point.get_obj().x == 4
    clone = pickle.loads(pickle.dumps(point))
    clone.y = 8.0
    assert point.y == 8.0


# --- Arrays: indexing, slicing, strings, buffer ------------------------------------------------

ARRAY_OPERATIONS = [
    lambda a: a[0], lambda a: a[-1], lambda a: a[4], lambda a: a[-5], lambda a: a[5], lambda a: a[-6],
    lambda a: a[2**70], lambda a: a[1:3], lambda a: a[::-2], lambda a: a[:], lambda a: a["x"],
    lambda a: a[1.0], lambda a: a[np.int64(2)], lambda a: len(a), lambda a: list(a),
    lambda a: a.__setitem__(0, 9), lambda a: a.__setitem__(-1, 8), lambda a: a.__setitem__(5, 1),
    lambda a: a.__setitem__(0, 1.5), lambda a: a.__setitem__(0, "x"), lambda a: a.__setitem__(0, 2**40),
    lambda a: a.__setitem__(slice(0, 2), [7, 6]), lambda a: a.__setitem__(slice(0, 2), [1]),
    lambda a: a.__setitem__(slice(0, 2), 5), lambda a: a.__setitem__(slice(None, None, 2), [3, 3, 3]),
    lambda a: a.__setitem__("x", 1), lambda a: a.__setitem__(1, True), lambda a: 3 in a,
]


@pytest.mark.parametrize("typecode", "idBq")
def test_array_indexing_matches_multiprocessing(typecode):
    ours, theirs = Array(typecode, range(5)), multiprocessing.Array(typecode, range(5))
    for number, operation in enumerate(ARRAY_OPERATIONS):
        got, expected = outcome(lambda: operation(ours)), outcome(lambda: operation(theirs))
        assert got[:2] == expected[:2], (number, got, expected)
        assert ours[:] == theirs[:], number
    assert ours.get_lock()._count() == 0


@settings(max_examples=150, deadline=None)
@given(typecode=st.sampled_from("bBhHiIlLqQfd"),
       writes=st.lists(st.tuples(st.integers(-8, 8),
                                 st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.booleans()),
                       max_size=6))
def test_array_writes_match_multiprocessing(typecode, writes):
    ours, theirs = Array(typecode, 5), multiprocessing.RawArray(typecode, 5)
    for index, item in writes:
        got = outcome(lambda: ours.__setitem__(index, item))
        expected = outcome(lambda: theirs.__setitem__(index, item))
        assert got[:2] == expected[:2]
        assert ours[:] == theirs[:]
        assert outcome(lambda: ours[index])[:2] == outcome(lambda: theirs[index])[:2]


def test_array_deletion_is_a_type_error():
    array = Array("i", 3)
    with pytest.raises(TypeError, match="doesn't support item deletion"):
        del array[0]


def test_string_array_value_and_raw_match_multiprocessing():
    ours, theirs = Array("c", b"hello"), multiprocessing.Array("c", b"hello")
    for operation in [lambda a: a.value, lambda a: a.raw, lambda a: a[1], lambda a: a[1:3],
                      lambda a: setattr(a, "value", b"hi"), lambda a: a.value, lambda a: a.raw,
                      lambda a: setattr(a, "raw", b"abcde"), lambda a: setattr(a, "value", b"toolong"),
                      lambda a: setattr(a, "value", "str"), lambda a: a.__setitem__(0, b"z")]:
        got, expected = outcome(lambda: operation(ours)), outcome(lambda: operation(theirs))
        assert got[:2] == expected[:2]
    assert ours.raw == theirs.raw


@pytest.mark.parametrize("typecode, dtype", [("i", np.int32), ("d", np.float64), ("B", np.uint8),
                                             ("q", np.int64), ("f", np.float32)])
def test_array_buffer_is_a_zero_copy_writable_view(typecode, dtype):
    array = Array(typecode, 6)
    view = np.asarray(array)
    assert view.dtype == dtype and view.shape == (6,) and view.flags.writeable
    view[2] = 5
    assert array[2] == 5
    array[3] = 7
    assert view[3] == 7
    assert np.shares_memory(view, np.frombuffer(array.get_obj(), dtype=dtype))
    memory = memoryview(array)
    assert memory.nbytes == 6 * np.dtype(dtype).itemsize and not memory.readonly
    assert memory.obj is array


def test_buffer_of_string_and_nested_arrays():
    text = Array("c", b"abc")
    assert np.asarray(text).tolist() == [b"a", b"b", b"c"]
    grid = Array(ctypes.c_int * 3, 2)
    view = np.asarray(grid)
    assert view.shape == (2, 3)
    view[1, 2] = 4
    assert grid[1][2] == 4


class Either(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("text", ctypes.c_char * 3)]


def test_buffer_of_wide_chars_structures_and_unions_reads_in_numpy():
    wide = Array("u", "abc")
    view = np.asarray(wide)
    assert view.dtype == np.dtype("<U1") and view.tolist() == ["a", "b", "c"]
    view[1] = "z"
    assert wide[:] == "azc"
    points = Array(Point, 3)
    view = np.asarray(points)
    assert view.dtype.names == ("x", "y") and view.dtype.itemsize == ctypes.sizeof(Point)
    view["y"][1] = 2.5
    assert points[1].y == 2.5
    unions = np.asarray(Array(Either, 2))
    assert unions.dtype == np.uint8 and unions.shape == (2, ctypes.sizeof(Either))
    assert np.asarray(Array("i", 0)).shape == (0,)


def test_buffer_exports_keep_the_array_alive():
    view = np.asarray(Array("i", [5, 6]))
    import gc
    gc.collect()
    assert view.tolist() == [5, 6]


# --- atomics --------------------------------------------------------------------------------

@pytest.mark.parametrize("typecode", INTEGER_TYPECODES)
def test_atomics_on_every_integer_width(typecode):
    value = Value(typecode, 5)
    assert value.load() == 5
    assert value.fetch_add(3) == 5
    assert value.load() == 8 == value.value
    assert value.compare_exchange(8, 11) is True
    assert value.compare_exchange(8, 12) is False
    assert value.load() == 11
    value.store(2)
    assert value.value == 2
    assert value.fetch_add(-1) == 2 and value.load() == 1


@pytest.mark.parametrize("typecode", INTEGER_TYPECODES)
def test_fetch_add_wraps_like_c(typecode):
    ctype = sharedctypes.typecode_to_type[typecode]
    bits = 8 * ctypes.sizeof(ctype)
    signed = ctype(-1).value < 0
    top = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    value = Value(typecode, top)
    assert value.fetch_add(1) == top
    assert value.load() == (-(2 ** (bits - 1)) if signed else 0)


@pytest.mark.parametrize("typecode", "fdcu")
def test_atomics_need_an_integer_value(typecode):
    value = Value(typecode, SAMPLE[typecode])
    for call in (value.load, lambda: value.store(1), lambda: value.fetch_add(1),
                 lambda: value.compare_exchange(0, 1)):
        with pytest.raises(TypeError, match="integer Value"):
            call()
    assert Value(ctypes.c_bool).get_obj().value is False
    with pytest.raises(TypeError):
        Value(ctypes.c_bool).fetch_add(1)


def test_atomic_arguments_are_integers():
    value = Value("i", 1)
    for bad in (1.0, "1", None, b"1"):
        with pytest.raises(TypeError):
            value.fetch_add(bad)
        with pytest.raises(TypeError):
            value.store(bad)
        with pytest.raises(TypeError):
            value.compare_exchange(1, bad)
    assert value.fetch_add(np.int64(2)) == 1 and value.load() == 3
    assert value.fetch_add(True) == 3


def test_compare_exchange_with_an_expected_value_the_type_cannot_hold():
    unsigned = Value("B", 255)
    assert unsigned.compare_exchange(-1, 0) is False
    assert unsigned.compare_exchange(511, 0) is False
    assert unsigned.compare_exchange(255, 0) is True
    wide = Value("Q", 2**64 - 1)
    assert wide.compare_exchange(2**64 - 1, 1) is True
    assert wide.compare_exchange(2**64 + 1, 2) is False
    signed = Value("q", -(2**63))
    assert signed.compare_exchange(2**63, 0) is False
    assert signed.compare_exchange(-(2**63), 0) is True


@settings(max_examples=200, deadline=None)
@given(typecode=st.sampled_from(INTEGER_TYPECODES), start=st.integers(-2**70, 2**70),
       steps=st.lists(st.integers(-2**70, 2**70), max_size=8))
def test_fetch_add_and_store_model_ctypes_wrapping(typecode, start, steps):
    ctype = sharedctypes.typecode_to_type[typecode]
    value = Value(typecode)
    value.store(start)
    model = ctype(start).value
    assert value.load() == model
    for step in steps:
        assert value.fetch_add(step) == model
        model = ctype(model + step).value
        assert value.load() == model == value.value


@settings(max_examples=200, deadline=None)
@given(typecode=st.sampled_from(INTEGER_TYPECODES), current=st.integers(-300, 300),
       expected=st.integers(-2**65, 2**65) | st.integers(-300, 300), new=st.integers(-2**65, 2**65))
def test_compare_exchange_models_an_exact_comparison(typecode, current, expected, new):
    ctype = sharedctypes.typecode_to_type[typecode]
    value = Value(typecode, current)
    held = value.load()
    swapped = value.compare_exchange(expected, new)
    assert swapped is (held == expected)
    assert value.load() == (ctype(new).value if swapped else held)


# --- pickling -------------------------------------------------------------------------------

@pytest.mark.parametrize("dumps", [pickle.dumps, ForkingPickler.dumps])
def test_everything_pickles_by_reference(dumps):
    raw_value, raw_array = RawValue("d", 1.0), RawArray("i", 4)
    value, array, text = Value("q", 1), Array("h", 3), Array("c", b"abc")
    clones = [pickle.loads(dumps(obj)) for obj in (raw_value, raw_array, value, array, text)]
    clones[0].value = 2.0
    clones[1][3] = 4
    clones[2].value = 5
    clones[3][0] = 6
    clones[4].value = b"xy"
    assert (raw_value.value, raw_array[3], value.value, array[0], text.value) == (2.0, 4, 5, 6, b"xy")
    assert type(clones[2]) is type(value) and type(clones[4]) is type(text)
    assert len(dumps(RawArray("d", 1 << 20))) < 500, "the data must not travel"


def test_pickled_wrapper_shares_the_lock():
    value = Value("i")
    clone = pickle.loads(pickle.dumps(value))
    with value.get_lock():
        assert clone.get_lock().acquire(timeout=0) is True     # same thread: recursive
        clone.get_lock().release()
    assert repr(clone.get_lock()) == repr(value.get_lock())


def test_plain_ctypes_objects_still_pickle_by_value():
    RawValue("i")                           # registers shmproc's reducer for c_int
    plain = ctypes.c_int(7)
    assert pickle.loads(pickle.dumps(plain)).value == 7


def test_multiprocessing_objects_of_the_same_type_keep_working(ctx):
    """Both libraries register a ForkingPickler reducer per ctypes type; whichever registered last
    must hand the other's objects back correctly."""
    ours = Value("i", 1)
    theirs = ctx.Value("i", 2)
    ours_again = Value("i", 3)
    p = run(ctx, support.set_value, theirs, 20)
    q = run(ctx, support.set_value, ours, 10)
    finish(p, q)
    assert (ours.value, theirs.value, ours_again.value) == (10, 20, 3)


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["x", "ii", "", 3, None, object(), [1], ctypes.c_int(1)])
def test_unknown_typecode_is_a_clear_type_error(bad):
    for make in (lambda: RawValue(bad), lambda: Value(bad), lambda: RawArray(bad, 2),
                 lambda: Array(bad, 2)):
        with pytest.raises(TypeError, match="typecodes c u b B h H i I l L q Q f d"):
            make()


def test_bad_sizes():
    with pytest.raises(ValueError, match=">= 0"):
        RawArray("i", -1)
    with pytest.raises(ValueError, match=">= 0"):
        Array("d", -5)
    for absurd in (2**62, 10**30):
        with pytest.raises(OverflowError):
            Array("i", absurd)
    with pytest.raises(OSError, match="not enough shared memory"):
        RawArray("d", 2**45)
    with pytest.raises(TypeError):
        Array("i", 3.0)
    assert list(Array("i", 2)) == [0, 0], "the allocator still works afterwards"


def test_bad_initial_values():
    with pytest.raises(TypeError):
        Value("i", 1.5)
    with pytest.raises(TypeError):
        Value("d", "x")
    with pytest.raises(TypeError):
        RawValue("i", 1, 2)
    with pytest.raises(TypeError):
        Array("i", [1, "x"])
    with pytest.raises(IndexError):
        Array("i", 2)[2]


def test_failed_writes_corrupt_nothing():
    value = Value("i", 5)
    array = Array("i", [1, 2, 3])
    for bad in (1.5, "x", None):
        with pytest.raises(TypeError):
            value.value = bad
        with pytest.raises(TypeError):
            array[0] = bad
    with pytest.raises(IndexError):
        array[3] = 4
    with pytest.raises(ValueError):
        array[0:2] = [1]
    assert value.value == 5 and array[:] == [1, 2, 3]
    assert value.get_lock()._count() == 0 and array.get_lock()._count() == 0
    assert value.get_lock().acquire(timeout=1) is True
    value.get_lock().release()


# --- across processes -----------------------------------------------------------------------

def test_child_writes_are_seen_by_the_parent(ctx):
    value, raw_value = Value("d", 0.0), RawValue("i", 0)
    array, raw_array, text = Array("i", 4), RawArray("q", 3), Array("c", 8)
    children = [run(ctx, support.set_value, value, 3.5), run(ctx, support.set_value, raw_value, -7),
                run(ctx, support.set_items, array, [(0, 1), (-1, 4)]),
                run(ctx, support.set_items, raw_array, [(1, 2**40)]),
                run(ctx, support.set_value, text, b"child")]
    finish(*children)
    assert value.value == 3.5 and raw_value.value == -7
    assert array[:] == [1, 0, 0, 4] and raw_array[:] == [0, 2**40, 0]
    assert text.value == b"child"


def test_child_writes_through_numpy_view_of_array(ctx):
    array = Array("d", 5)
    finish(run(ctx, support.fill_through_numpy, array, 2.5))
    assert np.asarray(array).tolist() == [2.5] * 5


def test_child_atomics(ctx):
    value, results = Value("l", 0), Array("q", 4)
    finish(run(ctx, support.atomics_sequence, value, results))
    assert results[:] == [1, 0, 20, 25]
    assert value.value == 25


def test_child_sets_structure_fields(ctx):
    point = Value(Point)
    finish(run(ctx, support.set_structure_fields, point, 3, 4.5))
    assert (point.x, point.y) == (3, 4.5)


@pytest.mark.stress
@pytest.mark.parametrize("increment", [support.add_to_value_atomically,
                                       support.add_to_value_under_lock])
def test_two_processes_times_200_000_increments_give_the_exact_total(ctx, increment):
    value = Value("i", 0)
    children = [run(ctx, increment, value, 200_000) for _ in range(2)]
    finish(*children)
    assert value.value == 400_000
