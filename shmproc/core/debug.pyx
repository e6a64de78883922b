# debug: hooks for tests and debugging, kept off the public types. Each takes a queue (QueueCore) or
# a Pipe's end (ConnectionEnd) and looks at its ring.


cdef Ring ring_of(object obj):
    cdef Ring ring
    if isinstance(obj, QueueCore):
        ring = (<QueueCore>obj).ring
    elif isinstance(obj, ConnectionEnd):
        ring = (<ConnectionEnd>obj).ring
    else:
        raise TypeError(f"not a queue or a Pipe's end: {obj!r}")
    if ring is None:
        raise ValueError("never opened")
    return ring


def debug_ring_indices(obj):
    """(head, tail, gets, puts, consumer lock word, producer lock word) of obj's ring."""
    cdef shm_ring_t *ring = ring_of(obj).ring
    return (shm_load_u64(&ring.head), shm_load_u64(&ring.tail),
            shm_load_u64(&ring.gets), shm_load_u64(&ring.puts),
            shm_load_u32(&ring.consumer_lock.state), shm_load_u32(&ring.producer_lock.state))


def debug_take_ring_lock(obj, producer):
    """Take a side's lock of obj's ring and keep it (tests: a process killed while holding it)."""
    take_side_lock(ring_of(obj).ring, producer, NO_DEADLINE)


def debug_ring_memory(obj):
    """(bytes of the data area reserved, bytes of the channel segment the kernel has allocated):
    for tests of a growable ring's growth and trimming."""
    cdef Ring ring = ring_of(obj)
    return ring.ring.reserved, _os.fstat(ring.segment.fd).st_blocks * 512
