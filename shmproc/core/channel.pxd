# channel's interface: new channels, and a ring's way to and from another process.

cdef tuple create_channel(int nrings, object capacity, object maxsize, bint joinable, bint growable)
cdef Ring new_queue_ring(object maxsize, bint joinable, object capacity)
cdef list new_pipe_rings(bint duplex, object capacity)
cdef tuple ring_handle(Ring ring)
cdef Ring attach_ring(tuple handle)
