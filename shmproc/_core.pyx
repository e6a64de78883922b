# shmproc._core: the data plane. One extension, one C translation unit: the parts below are
# included in dependency order (as uvloop does), so hot helpers inline across them. C declarations
# live in includes/; the parts only cimport.
#
# Parts:
#   errors     exceptions, wait statuses, timeouts -> deadlines
#   segment    unnamed shared-memory segments: create, map, attach by (pid, fd)
#   heap       blocks carved from per-process arenas; large blocks own a segment
#   wait       spin, yield, then futex sleep in slices; wake only when someone sleeps
#   primitive  the common base of shared synchronization objects and their pickling
#   lock, semaphore, event, condition, barrier   the primitives
#   value      Value/Array state: C-level access and atomics
#   ring       the message ring under Queue and Pipe
#   lifetime   the parent-death signal (prctl) for freshly started children

cimport cython
cimport libc.errno as cerrno
from libc.errno cimport EINTR, ETIMEDOUT
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, UINT32_MAX
from libc.string cimport memcmp, memcpy, memset
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap
from posix.types cimport off_t
from posix.unistd cimport close
from cpython.buffer cimport PyBuffer_FillInfo
from cpython.exc cimport PyErr_CheckSignals

from shmproc.includes.atomics cimport *
from shmproc.includes.futex cimport *
from shmproc.includes.layout cimport *
from shmproc.includes.linux cimport *
from shmproc.includes.process_identity cimport *

import errno
import time as _time

if shm_identity_init() != 0:
    raise OSError("pthread_atfork failed: cannot track the process id across fork")

# The largest count a Semaphore may hold (multiprocessing's SEM_VALUE_MAX on Linux).
SEMAPHORE_VALUE_MAX = 2147483647

# Whether this is the debug build (SHMPROC_DEBUG=1: bounds checks and assertions on, -O0 -g), set by
# setup.py at compile time; tests/test_build.py checks that CI's debug run really ran on one.
DEBUG = SHMPROC_DEBUG_BUILD

include "core/errors.pyx"
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
include "core/ring.pyx"
include "core/lifetime.pyx"
