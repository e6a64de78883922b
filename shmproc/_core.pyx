# shmproc._core: the data plane. One extension, one C translation unit: the parts below are
# included in dependency order (as uvloop does), so hot helpers inline across them. C declarations
# live in includes/; the parts only cimport.
#
# Parts, each one file with one job, in the order they are included (no part includes another):
#   errors      exceptions; after_wait (a wait's result -> Python behaviour); shm_os_error
#   handles     descriptors that cross a process boundary: passed at start, or opened by (pid, fd)
#   segment     unnamed shared-memory segments: create, map, attach
#   heap        blocks carved from per-process arenas; large blocks own a segment
#   wait        spin policies, then futex sleep in slices; wake only when someone sleeps
#   primitive   the common base of shared synchronization objects and their pickling
#   lock, semaphore, event, condition, barrier   the primitives
#   value       Value/Array state: C-level access and atomics
#   codec       objects to ring records and back (pickle protocol 5, scalars inline)
#   spill       the side file that carries messages too large for a ring
#   tasks       JoinableQueue task accounting: task_done, join, who holds unfinished tasks
#   notify      a ring's notify pipe: select() readiness, EOF, closed readers
#   ring        the byte protocol of one message ring (Ring)
#   channel     creating channels; a ring's handle to another process and back
#   queue       QueueCore / JoinableQueueCore: what Queue, SimpleQueue, JoinableQueue subclass
#   connection  ConnectionEnd: what a Pipe's Connection wraps
#   debug       test and debugging hooks on a queue's or a Pipe end's ring
#   lifetime    the parent-death signal (prctl) for freshly started children

cimport cython
cimport libc.errno as cerrno
from libc.errno cimport EFBIG, EINTR, ENOMEM, ENOSPC, ETIMEDOUT
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, UINT32_MAX
from libc.string cimport memcmp, memcpy, memset
from posix.mman cimport MAP_FAILED, MAP_POPULATE, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap
from posix.types cimport off_t
from posix.unistd cimport close, read, write
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_FromDouble
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8

from shmproc.includes.atomics cimport *
from shmproc.includes.futex cimport *
from shmproc.includes.layout cimport *
from shmproc.includes.linux cimport *
from shmproc.includes.process_identity cimport *
from shmproc.includes.ring cimport *

include "includes/stdlib.pxi"

if shm_identity_init() != 0:
    raise OSError("pthread_atfork failed: cannot track the process id across fork")

# The largest count a Semaphore may hold (multiprocessing's SEM_VALUE_MAX on Linux).
SEMAPHORE_VALUE_MAX = 2147483647

# Whether this is the debug build (SHMPROC_DEBUG=1: bounds checks and assertions on, -O0 -g), set by
# setup.py at compile time; tests/test_build.py checks that CI's debug run really ran on one.
DEBUG = SHMPROC_DEBUG_BUILD

include "core/errors.pyx"
include "core/handles.pyx"
include "core/segment.pyx"
include "core/heap.pyx"
include "core/wait.pyx"
include "core/primitive.pyx"
include "core/lock.pyx"
include "core/semaphore.pyx"
include "core/event.pyx"
include "core/condition.pyx"
include "core/barrier.pyx"
include "core/value.pyx"
include "core/codec.pyx"
include "core/spill.pyx"
include "core/tasks.pyx"
include "core/notify.pyx"
include "core/ring.pyx"
include "core/channel.pyx"
include "core/queue.pyx"
include "core/connection.pyx"
include "core/debug.pyx"
include "core/lifetime.pyx"
