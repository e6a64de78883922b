# shmproc._core's declarations: the .pxd twins of the parts that other parts build on, included in
# the order _core.pyx includes the parts. A part's twin gives its interface (its cdef class's fields
# and methods, the structs and functions others call); the rest of the part stays private.

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

from shmproc.includes.layout cimport *
from shmproc.includes.ring cimport *

include "core/segment.pxd"
include "core/heap.pxd"
include "core/codec.pxd"
include "core/spill.pxd"
include "core/tasks.pxd"
include "core/notify.pxd"
include "core/ring.pxd"
include "core/channel.pxd"
