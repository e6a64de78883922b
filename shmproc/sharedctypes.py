"""ctypes objects in shared memory (multiprocessing.sharedctypes, same names and signatures).

RawValue/RawArray are plain ctypes objects laid over a shmproc Block; Value/Array wrap them with a
lock in the core's synchronized wrappers, whose ``.value``, indexing and ``with`` are C calls.
Integer Values also have lock-free atomics: ``load``, ``store``, ``fetch_add``, ``compare_exchange``.

Everything here pickles as a handle to its Block (plus the ctypes type and the lock), with plain
pickle as well as multiprocessing's ForkingPickler, so it reaches children under fork, spawn and
forkserver and also travels through queues. The receiver maps the same memory: the sender must keep
the object alive until then (see docs/sharedctypes.md).
"""
import copyreg
import ctypes
import weakref
from multiprocessing import reduction as _mp_reduction

from shmproc import _core
from shmproc._core import (
    RLock,
    Synchronized,
    SynchronizedArray,
    SynchronizedBase,
    SynchronizedString,
)

__all__ = ["RawValue", "RawArray", "Value", "Array", "copy", "synchronized"]

typecode_to_type = {
    "c": ctypes.c_char,     "u": ctypes.c_wchar,
    "b": ctypes.c_byte,     "B": ctypes.c_ubyte,
    "h": ctypes.c_short,    "H": ctypes.c_ushort,
    "i": ctypes.c_int,      "I": ctypes.c_uint,
    "l": ctypes.c_long,     "L": ctypes.c_ulong,
    "q": ctypes.c_longlong, "Q": ctypes.c_ulonglong,
    "f": ctypes.c_float,    "d": ctypes.c_double,
}


def _ctype(typecode_or_type):
    """The ctypes type a typecode names (or the type itself), with a clear error for anything else:
    multiprocessing says only "this type has no size"."""
    try:
        type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    except TypeError:               # unhashable: certainly not a typecode
        type_ = typecode_or_type
    if isinstance(type_, type):
        try:
            ctypes.sizeof(type_)
            return type_
        except TypeError:
            pass
    raise TypeError(f"{typecode_or_type!r} is neither a ctypes type nor one of the typecodes "
                    f"{' '.join(typecode_to_type)}")


class SharedBuffer:
    """What a shared ctypes object keeps as ``_wrapper``: its Block. Shaped like multiprocessing's
    heap.BufferWrapper (``create_memoryview``), so either library's ctypes reducer can pickle it."""
    __slots__ = ("block",)

    def __init__(self, block):
        self.block = block

    def create_memoryview(self):
        return memoryview(self.block)

    def __reduce__(self):
        return (_attach_buffer, (self.block.handle(),))


def _attach_buffer(handle):
    return SharedBuffer(_core.Block.attach(handle))


def _new_value(type_):
    block = _core.allocate(ctypes.sizeof(type_))       # zeroed
    return rebuild_ctype(type_, SharedBuffer(block), None)


def reduce_ctype(obj):
    """Pickle a shared ctypes object as (its type, its Block's handle, its length)."""
    wrapper = getattr(obj, "_wrapper", None)
    if not isinstance(wrapper, SharedBuffer):
        if wrapper is not None:
            # multiprocessing's own RawValue of the same ctypes type: this reducer replaced its
            # registration in ForkingPickler (both key by type), so hand it back.
            from multiprocessing import sharedctypes
            return sharedctypes.reduce_ctype(obj)  # type: ignore[attr-defined]  # not in typeshed
        return obj.__reduce__()                   # an ordinary ctypes object: pickle a copy
    if isinstance(obj, ctypes.Array):
        return rebuild_ctype, (obj._type_, wrapper, obj._length_)
    return rebuild_ctype, (type(obj), wrapper, None)


def rebuild_ctype(type_, wrapper, length):
    if length is not None:
        type_ = type_ * length
    _register(type_)
    obj = type_.from_buffer(wrapper.create_memoryview())
    obj._wrapper = wrapper
    return obj


def _register(type_):
    # Registered on every creation, as multiprocessing does, so that ours is the reducer that
    # ForkingPickler holds for the type; reduce_ctype hands multiprocessing's objects back to it.
    _mp_reduction.ForkingPickler.register(type_, reduce_ctype)
    copyreg.pickle(type_, reduce_ctype)


def RawValue(typecode_or_type, *args):
    """Returns a ctypes object allocated from shared memory"""
    obj = _new_value(_ctype(typecode_or_type))
    obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    """Returns a ctypes array allocated from shared memory"""
    type_ = _ctype(typecode_or_type)
    if isinstance(size_or_initializer, int):
        return _new_value(type_ * size_or_initializer)
    type_ = type_ * len(size_or_initializer)
    result = _new_value(type_)
    result.__init__(*size_or_initializer)
    return result


def _lock_for(lock, ctx):
    if lock in (True, None):
        return ctx.RLock() if ctx is not None else RLock()
    if not hasattr(lock, "acquire"):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return lock


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """Return a synchronization wrapper for a Value"""
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock, ctx), ctx=ctx)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """Return a synchronization wrapper for a RawArray"""
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock, ctx), ctx=ctx)


def copy(obj):
    """A new shared ctypes object holding a copy of obj."""
    new_obj = _new_value(type(obj))
    ctypes.pointer(new_obj)[0] = obj
    return new_obj


def synchronized(obj, lock=None, ctx=None):
    """Wrap a ctypes object with a lock (a new RLock when lock is None)."""
    assert not isinstance(obj, SynchronizedBase), "object already synchronized"
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized(obj, lock, ctx)
    if isinstance(obj, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock, ctx)
        return SynchronizedArray(obj, lock, ctx)
    return _synchronized_class(type(obj))(obj, lock, ctx)


_core.register_synchronized_factory(synchronized)    # a pickled wrapper is rebuilt through it


_class_cache: "weakref.WeakKeyDictionary[type, type]" = weakref.WeakKeyDictionary()


def _synchronized_class(cls):
    """For a Structure or Union: a wrapper class with one locked property per field, named as
    multiprocessing names it (Synchronized<name>)."""
    try:
        return _class_cache[cls]
    except KeyError:
        pass
    properties = {name: _locked_property(name) for name, *_ in cls._fields_}
    scls = _class_cache[cls] = type("Synchronized" + cls.__name__, (SynchronizedBase,), properties)
    return scls


def _locked_property(name):
    def get(self):
        with self:
            return getattr(self._obj, name)

    def set(self, value):
        with self:
            setattr(self._obj, name, value)

    return property(get, set)
