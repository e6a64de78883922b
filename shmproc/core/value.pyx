# value: the synchronized wrappers behind sharedctypes.Value and Array, and the atomics of integer
# Values.
#
# Why C: multiprocessing's wrapper spends ~1.5 us per `v.value` on Python frames (a property, a
# bound acquire, a try/finally, the ctypes getter, a bound release). Here `.value` takes the lock
# through the core's own fast path and reads the shared word directly, switching on the width that
# was worked out once when the wrapper was made. Anything off the common path (a bool assigned to an
# int Value, a c_char, a Structure, a lock that is not shmproc's) goes through ctypes and the lock's
# own methods, so errors and conversions are exactly ctypes' and multiprocessing's.

from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLongMask
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int8_t, int16_t, uint8_t, uint16_t

# ctypes is imported when the first wrapper is made (by then sharedctypes.py has imported it):
# every spawned child imports the core, and ctypes would add ~3 ms to each.
_ctypes = None
# shmproc.sharedctypes.synchronized, which a wrapper unpickles through. The core sits below that
# module and does not import it: the module registers the function when it is imported (it always
# is before a wrapper exists: it makes them).
_synchronized_factory = None


def register_synchronized_factory(factory):
    """Called by shmproc.sharedctypes at import: how a pickled wrapper is rebuilt."""
    global _synchronized_factory
    _synchronized_factory = factory

_TWO_TO_THE_64 = 1 << 64


# The C layout of a Value or Array element, when shmproc can read it without ctypes.
cdef enum ValueKind:
    KIND_CTYPES = 0      # ctypes converts (c_char, c_wchar, c_bool, structures, byte-swapped, ...)
    KIND_I8
    KIND_U8
    KIND_I16
    KIND_U16
    KIND_I32
    KIND_U32
    KIND_I64
    KIND_U64
    KIND_F32
    KIND_F64

# How the wrapper takes its lock.
cdef enum LockKind:
    LOCK_RLOCK           # shmproc RLock: the core's recursive fast path
    LOCK_PLAIN           # shmproc Lock
    LOCK_OTHER           # anything with acquire/release (multiprocessing, threading): its methods


cdef dict _kind_of_type = {}


cdef void _learn_integer_kinds():
    cdef dict by_width = {(1, True): KIND_I8, (1, False): KIND_U8, (2, True): KIND_I16,
                          (2, False): KIND_U16, (4, True): KIND_I32, (4, False): KIND_U32,
                          (8, True): KIND_I64, (8, False): KIND_U64}
    for ctype in (_ctypes.c_byte, _ctypes.c_ubyte, _ctypes.c_short, _ctypes.c_ushort, _ctypes.c_int,
                  _ctypes.c_uint, _ctypes.c_long, _ctypes.c_ulong, _ctypes.c_longlong,
                  _ctypes.c_ulonglong):
        signed = ctype(-1).value < 0
        _kind_of_type[ctype] = by_width[(_ctypes.sizeof(ctype), signed)]
    _kind_of_type[_ctypes.c_float] = KIND_F32
    _kind_of_type[_ctypes.c_double] = KIND_F64


cdef object ensure_ctypes():
    global _ctypes
    if _ctypes is None:
        import ctypes
        _ctypes = ctypes
        _learn_integer_kinds()
    return _ctypes


cdef inline bint is_integer_kind(int kind) noexcept nogil:
    return KIND_I8 <= kind <= KIND_U64


cdef inline bint is_signed_kind(int kind) noexcept nogil:
    return kind == KIND_I8 or kind == KIND_I16 or kind == KIND_I32 or kind == KIND_I64


cdef inline int kind_bits(int kind) noexcept nogil:
    if kind <= KIND_U8:
        return 8
    if kind <= KIND_U16:
        return 16
    if kind <= KIND_U32:
        return 32
    return 64


cdef object read_number(int kind, char *address):
    """The Python value of the number at address (an integer or float kind)."""
    if kind == KIND_I32:
        return (<int32_t *>address)[0]
    if kind == KIND_I64:
        return (<int64_t *>address)[0]
    if kind == KIND_F64:
        return (<double *>address)[0]
    if kind == KIND_U32:
        return (<uint32_t *>address)[0]
    if kind == KIND_U64:
        return (<uint64_t *>address)[0]
    if kind == KIND_I8:
        return (<int8_t *>address)[0]
    if kind == KIND_U8:
        return (<uint8_t *>address)[0]
    if kind == KIND_I16:
        return (<int16_t *>address)[0]
    if kind == KIND_U16:
        return (<uint16_t *>address)[0]
    return (<float *>address)[0]


cdef inline void write_integer_bits(int kind, char *address, uint64_t bits) noexcept nogil:
    """Store the low bits of `bits` at address: C's wrap-around, as ctypes does on assignment."""
    if kind == KIND_I32 or kind == KIND_U32:
        (<uint32_t *>address)[0] = <uint32_t>bits
    elif kind == KIND_I64 or kind == KIND_U64:
        (<uint64_t *>address)[0] = bits
    elif kind == KIND_I8 or kind == KIND_U8:
        (<uint8_t *>address)[0] = <uint8_t>bits
    else:
        (<uint16_t *>address)[0] = <uint16_t>bits


cdef inline bint takes_fast_write(int kind, object value) noexcept:
    """True when `value` can be stored without ctypes: an exact int into an integer kind, an exact
    float into a float kind. Everything else (bool, numpy scalars, wrong types) goes to ctypes, which
    converts or raises exactly as multiprocessing does."""
    if is_integer_kind(kind):
        return type(value) is int
    if kind == KIND_F64 or kind == KIND_F32:
        return type(value) is float
    return False


cdef inline void write_fast(int kind, char *address, object value):
    if kind == KIND_F64:
        (<double *>address)[0] = <double>value
    elif kind == KIND_F32:
        (<float *>address)[0] = <float><double>value
    else:
        write_integer_bits(kind, address, PyLong_AsUnsignedLongLongMask(value))


cdef uint64_t integer_bits(object value) except? 0xFFFFFFFFFFFFFFFF:
    """An integer argument of an atomic operation, reduced modulo 2**64 (the caller keeps the low
    bits it needs). Like ctypes: __index__ is honoured, a float is a TypeError."""
    if type(value) is not int:
        value = PyNumber_Index(value)
    return PyLong_AsUnsignedLongLongMask(value)


cdef bint integer_fits(int kind, object value, uint64_t *bits) except -1:
    """Whether the integer `value` is representable in `kind`; if so, its bits go to *bits."""
    cdef int overflow = 0
    cdef long long number
    cdef int width = kind_bits(kind)
    if type(value) is not int:
        value = PyNumber_Index(value)
    number = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow < 0:
        return False
    if overflow > 0:
        # Above the long long range: only a u64 can hold it, and only below 2**64.
        if kind != KIND_U64 or value >= _TWO_TO_THE_64:
            return False
        bits[0] = PyLong_AsUnsignedLongLongMask(value)
        return True
    if is_signed_kind(kind):
        if width < 64 and not (-(1LL << (width - 1)) <= number < (1LL << (width - 1))):
            return False
    elif number < 0 or (width < 64 and number >= (1LL << width)):
        return False
    bits[0] = <uint64_t>number
    return True


cdef bytes structure_format(ctype, bytes ctypes_format):
    """ctypes leaves the padding out of a structure's buffer format, so numpy refuses it (the
    itemsizes disagree); numpy's own description of the same structure has it. Where numpy has none
    that reads back (a union), the elements are exported as plain bytes."""
    try:
        import numpy
        probe = memoryview(numpy.empty(1, dtype=numpy.dtype(ctype)))
        if numpy.asarray(probe).itemsize == _ctypes.sizeof(ctype):
            return probe.format.encode()
    except Exception:
        pass
    return b"%dB" % _ctypes.sizeof(ctype)


cdef class SynchronizedBase:
    """A ctypes object in shared memory together with the lock that guards it (multiprocessing's
    SynchronizedBase). Made by sharedctypes.Value/Array/synchronized."""
    cdef readonly object _obj
    cdef readonly object _lock
    cdef SharedLock shared_lock      # _lock when it is shmproc's, else None
    cdef int lock_kind
    cdef int kind                     # ValueKind of the value, or of an array's elements
    cdef char *address
    cdef object __weakref__

    def __init__(self, obj, lock=None, ctx=None):
        ensure_ctypes()
        self._obj = obj
        if lock:
            self._lock = lock
        elif ctx is not None:
            self._lock = ctx.RLock()
        else:
            self._lock = RLock()
        if type(self._lock) is RLock:
            self.lock_kind = LOCK_RLOCK
            self.shared_lock = self._lock
        elif type(self._lock) is Lock:
            self.lock_kind = LOCK_PLAIN
            self.shared_lock = self._lock
        else:
            self.lock_kind = LOCK_OTHER
        self.address = <char *><size_t>_ctypes.addressof(obj)
        self.kind = KIND_CTYPES

    @cython.final
    cdef inline int enter(self) except -1:
        """Take the lock for one access: 1 if taken (call leave), 0 if this thread already holds
        the RLock. Then the access leaves the lock's cache line alone rather than counting a level
        up and down: under contention another core is reading that line, and every write to it
        would cost a transfer. (No one but the owner can see the count.)"""
        cdef RLock rlock
        cdef shm_lock_t *lock
        if self.lock_kind == LOCK_RLOCK:
            rlock = <RLock>self.shared_lock
            if rlock.is_mine():
                return 0
            if not rlock.take_free():
                rlock.acquire_first(NO_DEADLINE)
        elif self.lock_kind == LOCK_PLAIN:
            lock = self.shared_lock.lock()
            if lock_try(lock, shm_current_pid()):
                shm_store_relaxed_u64(&lock.owner_thread, shm_current_thread())
            else:
                self.shared_lock.acquire_blocking(NO_DEADLINE)
        else:
            self._lock.acquire()
        return 1

    @cython.final
    cdef inline int leave(self) except -1:
        cdef shm_lock_t *lock
        if self.lock_kind == LOCK_RLOCK:
            lock = self.shared_lock.lock()
            lock.depth -= 1
            if lock.depth == 0:
                lock_release(lock)
        elif self.lock_kind == LOCK_PLAIN:
            lock_release(self.shared_lock.lock())
        else:
            self._lock.release()
        return 0

    def acquire(self, *args, **kwargs):
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        return self._lock.release()

    def __enter__(self):
        if self.lock_kind == LOCK_OTHER:
            return self._lock.__enter__()
        if not self.enter():
            self.shared_lock.lock().depth += 1
        return True

    def __exit__(self, exc_type, exc_value, traceback):
        if self.lock_kind == LOCK_RLOCK and self.shared_lock.is_mine():
            self.leave()
        else:       # including a misplaced exit: the lock's own release raises what it raises
            return self._lock.__exit__(exc_type, exc_value, traceback)

    def get_obj(self):
        return self._obj

    def get_lock(self):
        return self._lock

    def __reduce__(self):
        if _synchronized_factory is None:
            raise TypeError(f"cannot pickle {type(self).__name__}: import shmproc.sharedctypes first")
        return (_synchronized_factory, (self._obj, self._lock))

    def __repr__(self):
        return '<%s wrapper for %s>' % (type(self).__name__, self._obj)


cdef class Synchronized(SynchronizedBase):
    """A shared ctypes number (or other simple ctypes value) and its lock: `.value` takes the lock,
    as in multiprocessing. Integer Values also have lock-free atomics, which do not take it."""

    def __init__(self, obj, lock=None, ctx=None):
        SynchronizedBase.__init__(self, obj, lock, ctx)
        self.kind = _kind_of_type.get(type(obj), KIND_CTYPES)

    @property
    def value(self):
        cdef int taken
        if self.kind == KIND_CTYPES:
            taken = self.enter()
            try:
                return self._obj.value
            finally:
                if taken:
                    self.leave()
        taken = self.enter()
        try:
            return read_number(self.kind, self.address)
        finally:
            if taken:
                self.leave()

    @value.setter
    def value(self, value):
        cdef int taken
        if takes_fast_write(self.kind, value):
            taken = self.enter()
            write_fast(self.kind, self.address, value)
            if taken:
                self.leave()
            return
        taken = self.enter()
        try:
            self._obj.value = value
        finally:
            if taken:
                self.leave()

    cdef int require_integer(self) except -1:
        if not is_integer_kind(self.kind):
            raise TypeError(f"atomic operations need an integer Value (typecodes b B h H i I l L q Q), "
                            f"not {type(self._obj).__name__}")
        return 0

    def load(self):
        """The value, read atomically without taking the lock."""
        cdef char *p = self.address
        cdef int kind = self.kind
        self.require_integer()
        if kind == KIND_I32:
            return shm_load_i32(<int32_t *>p)
        if kind == KIND_I64:
            return shm_load_i64(<int64_t *>p)
        if kind == KIND_U32:
            return shm_load_u32(<uint32_t *>p)
        if kind == KIND_U64:
            return shm_load_u64(<uint64_t *>p)
        if kind == KIND_I8:
            return shm_load_i8(<int8_t *>p)
        if kind == KIND_U8:
            return shm_load_u8(<uint8_t *>p)
        if kind == KIND_I16:
            return shm_load_i16(<int16_t *>p)
        return shm_load_u16(<uint16_t *>p)

    def store(self, value):
        """Set the value atomically without taking the lock (modulo 2**bits, as ctypes assigns)."""
        cdef char *p = self.address
        cdef int kind = self.kind
        self.require_integer()
        cdef uint64_t bits = integer_bits(value)
        if kind == KIND_I32 or kind == KIND_U32:
            shm_store_u32(<uint32_t *>p, <uint32_t>bits)
        elif kind == KIND_I64 or kind == KIND_U64:
            shm_store_u64(<uint64_t *>p, bits)
        elif kind == KIND_I8 or kind == KIND_U8:
            shm_store_u8(<uint8_t *>p, <uint8_t>bits)
        else:
            shm_store_u16(<uint16_t *>p, <uint16_t>bits)

    def fetch_add(self, n):
        """Add n atomically without taking the lock and return the value before the addition.
        Wraps around like C (two's complement)."""
        cdef char *p = self.address
        cdef int kind = self.kind
        self.require_integer()
        cdef uint64_t bits = integer_bits(n)
        if kind == KIND_I32:
            return shm_fetch_add_i32(<int32_t *>p, <int32_t><uint32_t>bits)
        if kind == KIND_I64:
            return shm_fetch_add_i64(<int64_t *>p, <int64_t>bits)
        if kind == KIND_U32:
            return shm_fetch_add_u32(<uint32_t *>p, <uint32_t>bits)
        if kind == KIND_U64:
            return shm_fetch_add_u64(<uint64_t *>p, bits)
        if kind == KIND_I8:
            return shm_fetch_add_i8(<int8_t *>p, <int8_t><uint8_t>bits)
        if kind == KIND_U8:
            return shm_fetch_add_u8(<uint8_t *>p, <uint8_t>bits)
        if kind == KIND_I16:
            return shm_fetch_add_i16(<int16_t *>p, <int16_t><uint16_t>bits)
        return shm_fetch_add_u16(<uint16_t *>p, <uint16_t>bits)

    def compare_exchange(self, expected, new):
        """If the value equals `expected`, set it to `new` (modulo 2**bits); atomically, without
        taking the lock. True if it was set. An `expected` the type cannot hold never matches."""
        cdef char *p = self.address
        cdef int kind = self.kind
        cdef uint64_t expected_bits = 0
        self.require_integer()
        cdef uint64_t new_bits = integer_bits(new)
        if not integer_fits(kind, expected, &expected_bits):
            return False
        cdef int32_t e_i32 = <int32_t><uint32_t>expected_bits
        cdef int64_t e_i64 = <int64_t>expected_bits
        cdef uint32_t e_u32 = <uint32_t>expected_bits
        cdef int8_t e_i8 = <int8_t><uint8_t>expected_bits
        cdef uint8_t e_u8 = <uint8_t>expected_bits
        cdef int16_t e_i16 = <int16_t><uint16_t>expected_bits
        cdef uint16_t e_u16 = <uint16_t>expected_bits
        if kind == KIND_I32:
            return shm_cas_i32(<int32_t *>p, &e_i32, <int32_t><uint32_t>new_bits)
        if kind == KIND_I64:
            return shm_cas_i64(<int64_t *>p, &e_i64, <int64_t>new_bits)
        if kind == KIND_U32:
            return shm_cas_u32(<uint32_t *>p, &e_u32, <uint32_t>new_bits)
        if kind == KIND_U64:
            return shm_cas_u64(<uint64_t *>p, &expected_bits, new_bits)
        if kind == KIND_I8:
            return shm_cas_i8(<int8_t *>p, &e_i8, <int8_t><uint8_t>new_bits)
        if kind == KIND_U8:
            return shm_cas_u8(<uint8_t *>p, &e_u8, <uint8_t>new_bits)
        if kind == KIND_I16:
            return shm_cas_i16(<int16_t *>p, &e_i16, <int16_t><uint16_t>new_bits)
        return shm_cas_u16(<uint16_t *>p, &e_u16, <uint16_t>new_bits)


cdef class SynchronizedArray(SynchronizedBase):
    """A shared ctypes array and its lock (multiprocessing's SynchronizedArray). Indexing takes the
    lock; the buffer protocol does not (numpy.asarray(arr) is a zero-copy view of the shared data,
    like a view of a RawArray)."""
    cdef Py_ssize_t length
    cdef Py_ssize_t itemsize
    cdef Py_ssize_t nbytes
    cdef int ndim
    cdef bytes format
    cdef Py_ssize_t *shape_and_strides

    def __init__(self, obj, lock=None, ctx=None):
        SynchronizedBase.__init__(self, obj, lock, ctx)
        self.length = len(obj)
        self.kind = _kind_of_type.get(obj._type_, KIND_CTYPES)
        view = memoryview(obj)
        self.itemsize = view.itemsize
        self.nbytes = view.nbytes
        self.ndim = view.ndim
        self.format = view.format.encode()
        if obj._type_ is _ctypes.c_wchar and self.itemsize == 4:
            # ctypes says 'u' (UCS-2 in PEP 3118) for a 4-byte wchar_t; 'w' is UCS-4, which numpy reads.
            self.format = b"<w"
        elif issubclass(obj._type_, (_ctypes.Structure, _ctypes.Union)):
            self.format = structure_format(obj._type_, self.format)
        PyMem_Free(self.shape_and_strides)
        self.shape_and_strides = <Py_ssize_t *>PyMem_Malloc(2 * max(self.ndim, 1) * sizeof(Py_ssize_t))
        if self.shape_and_strides == NULL:
            raise MemoryError()
        for i in range(self.ndim):
            self.shape_and_strides[i] = view.shape[i]
            self.shape_and_strides[self.ndim + i] = view.strides[i]

    def __dealloc__(self):
        PyMem_Free(self.shape_and_strides)

    def __len__(self):
        return self.length

    @cython.final
    cdef inline Py_ssize_t fast_index(self, object i) noexcept:
        """The element index for a plain in-range int on a numeric array, else -1 (ctypes' path,
        which also raises the errors)."""
        cdef int overflow = 0
        cdef long long index
        if self.kind == KIND_CTYPES or type(i) is not int:
            return -1
        index = PyLong_AsLongLongAndOverflow(i, &overflow)
        if overflow:
            return -1
        if index < 0:
            index += self.length
        if 0 <= index < self.length:
            return index
        return -1

    def __getitem__(self, i):
        cdef int taken
        cdef Py_ssize_t index = self.fast_index(i)
        if index >= 0:
            taken = self.enter()
            try:
                return read_number(self.kind, self.address + index * self.itemsize)
            finally:
                if taken:
                    self.leave()
        taken = self.enter()
        try:
            return self._obj[i]
        finally:
            if taken:
                self.leave()

    def __setitem__(self, i, value):
        cdef int taken
        cdef Py_ssize_t index = self.fast_index(i)
        if index >= 0 and takes_fast_write(self.kind, value):
            taken = self.enter()
            write_fast(self.kind, self.address + index * self.itemsize, value)
            if taken:
                self.leave()
            return
        taken = self.enter()
        try:
            self._obj[i] = value
        finally:
            if taken:
                self.leave()

    def __delitem__(self, i):
        raise TypeError(f"'{type(self).__name__}' object doesn't support item deletion")

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        if (flags & PyBUF_ND) == 0 and self.ndim != 1:
            raise BufferError("a multi-dimensional shared array needs a buffer request with shape")
        buffer.buf = self.address
        buffer.len = self.nbytes
        buffer.readonly = 0
        buffer.itemsize = self.itemsize
        buffer.format = <char *>self.format if flags & PyBUF_FORMAT else NULL
        buffer.ndim = self.ndim
        buffer.shape = self.shape_and_strides if flags & PyBUF_ND else NULL
        buffer.strides = self.shape_and_strides + self.ndim if (flags & PyBUF_STRIDES) == PyBUF_STRIDES else NULL
        buffer.suboffsets = NULL
        buffer.internal = NULL
        buffer.obj = self

    def __releasebuffer__(self, Py_buffer *buffer):
        pass


cdef class SynchronizedString(SynchronizedArray):
    """A shared array of c_char and its lock: `.value` and `.raw` as on a ctypes char array."""

    cdef object locked_get(self, str name):
        cdef int taken = self.enter()
        try:
            return getattr(self._obj, name)
        finally:
            if taken:
                self.leave()

    cdef int locked_set(self, str name, value) except -1:
        cdef int taken = self.enter()
        try:
            setattr(self._obj, name, value)
        finally:
            if taken:
                self.leave()
        return 0

    @property
    def value(self):
        return self.locked_get("value")

    @value.setter
    def value(self, value):
        self.locked_set("value", value)

    @property
    def raw(self):
        return self.locked_get("raw")

    @raw.setter
    def raw(self, value):
        self.locked_set("raw", value)
