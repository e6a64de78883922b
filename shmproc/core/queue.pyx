# queue: the core of Queue, SimpleQueue and JoinableQueue (queues.py subclasses these types): the
# queue API over one Ring, and nothing else, so that the public queue shows only that API.

Empty = _queue.Empty
Full = _queue.Full

cdef enum:
    PUT_BATCH = 256           # items encoded per producer-lock acquisition in put_many


cdef class QueueCore:
    """A process-shared FIFO queue over one growable ring. Made by Queue() and SimpleQueue()."""
    cdef Ring ring
    cdef bint simple                  # SimpleQueue: a closed queue raises OSError, not ValueError
    cdef object __weakref__

    def __init__(self, maxsize=0, capacity=QUEUE_CAPACITY, *, simple=False):
        self.ring = new_queue_ring(maxsize, isinstance(self, JoinableQueueCore), capacity)
        self.simple = simple

    def __reduce__(self):
        check_usable(self)
        return (_rebuild_queue, (type(self), ring_handle(self.ring), self.simple))

    def close(self):
        """This process will use the queue no more: put and get now raise."""
        if self.ring is not None:
            self.ring.close()

    @property
    def _closed(self):
        # multiprocessing's name: Queue.join_thread() checks it.
        return self.ring is None or self.ring.closed

    # -- producing -----------------------------------------------------------------------------

    def put(self, obj, block=True, timeout=None):
        """Append obj (pickled here, in the caller: an unpicklable object raises and leaves the
        queue untouched). Blocks while the ring is full (or holds maxsize messages); queue.Full when
        not blocking or when timeout passes."""
        cdef encoded_t item
        cdef int64_t deadline = NO_DEADLINE
        check_usable(self)
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        cdef uint64_t pickled_before = handles_pickled
        owner = encode_object(obj, &item)
        if handles_pickled != pickled_before:
            deposit_handles(self.ring, pickled_before)
        if self.ring.send_encoded(&item, owner, block, deadline) == 0:
            raise Full
        return None

    def put_nowait(self, obj):
        return self.put(obj, False)

    def put_many(self, items, block=True, timeout=None):
        """Append every item of an iterable, in order, many per lock acquisition and index update.

        Items are pickled in the caller: if one cannot be, the items before it have been put and the
        error is raised. If the ring stays full past the timeout (or at once, when not blocking),
        queue.Full is raised; its `count` attribute says how many items were put."""
        cdef encoded_t batch[PUT_BATCH]
        cdef Py_ssize_t count, written, total = 0
        cdef int64_t deadline = NO_DEADLINE
        check_usable(self)
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        iterator = iter(items)
        error = None
        cdef uint64_t pickled_before
        while True:
            owners = []
            count = 0
            pickled_before = handles_pickled
            for obj in iterator:
                try:
                    owners.append(encode_object(obj, &batch[count]))
                except BaseException as exc:
                    error = exc
                    break
                count += 1
                if count == PUT_BATCH:
                    break
            if count == 0:
                break
            if handles_pickled != pickled_before:
                deposit_handles(self.ring, pickled_before)
            written = self.ring.send_batch(batch, count, owners, block, deadline)
            total += written
            if written < count:
                full = Full(f"put_many: the queue stayed full; {total} items were put")
                full.count = total
                raise full
            if error is not None:
                break
        if error is not None:
            raise error
        return None

    # -- consuming -----------------------------------------------------------------------------

    def get(self, block=True, timeout=None):
        """Remove and return the oldest message. Blocks while the queue is empty; queue.Empty when
        not blocking or when timeout passes."""
        cdef int64_t deadline = NO_DEADLINE
        check_usable(self)
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        return self.ring.receive(block, deadline, False)

    def get_nowait(self):
        check_usable(self)
        return self.ring.receive(False, NO_DEADLINE, False)

    def get_many(self, max_messages=1_000_000_000, block=True, timeout=None):
        """Remove and return up to max_messages messages (at least one) as a list, oldest first, all
        under one lock acquisition and head update. Blocks while the queue is empty, like get()."""
        cdef int64_t deadline = NO_DEADLINE
        cdef Py_ssize_t limit = max_messages
        check_usable(self)
        if limit < 1:
            raise ValueError("max_messages must be at least 1")
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        return self.ring.receive_many(limit, block, deadline)

    # -- state -----------------------------------------------------------------------------------

    def qsize(self):
        """Messages in the queue now (approximate while others put and get)."""
        check_opened(self)
        return self.ring.qsize()

    def empty(self):
        check_opened(self)
        return self.ring.qsize() == 0

    def full(self):
        check_opened(self)
        cdef uint64_t maxsize = self.ring.ring.maxsize
        return maxsize != 0 and self.ring.qsize() >= maxsize

    def fileno(self):
        """A descriptor that select() reports readable while a message is waiting."""
        if self.ring is None or self.ring.closed:
            raise OSError("handle is closed")
        return notify_fileno(self.ring.ring, &self.ring.notify)


cdef inline int check_usable(QueueCore queue) except -1:
    """Raise what a closed (or never opened) queue raises; the common case is one inline test."""
    if queue.ring is None or queue.ring.closed:
        raise_unusable(queue)
    return 0


cdef int raise_unusable(QueueCore queue) except -1:
    if queue.ring is None:
        raise ValueError(f"{type(queue).__name__} was never opened (its __init__ did not run)")
    if queue.simple:
        raise OSError("handle is closed")
    raise ValueError(f"Queue {queue!r} is closed")


cdef inline int check_opened(QueueCore queue) except -1:
    """Raise if the queue was never opened (its counts may be read after close())."""
    if queue.ring is None:
        raise_unusable(queue)
    return 0


cdef class JoinableQueueCore(QueueCore):
    """A QueueCore that counts unfinished tasks across processes (tasks.pyx)."""

    def task_done(self):
        """A task taken from the queue is finished; ValueError if called more often than put()."""
        check_opened(self)
        task_done(self.ring.ring, &self.ring.tasks)

    def join(self):
        """Block until every item put has been taken and marked task_done()."""
        check_opened(self)
        join_tasks(self.ring.ring, &self.ring.tasks)


def deposit_handles_since(QueueCore queue, mark):
    """Before putting into queue a message whose parts were pickled in advance (the pool's
    results): deposit the handles this thread pickled since handles_mark() returned mark, tied to
    the queue, as put() does for what it pickles itself (core/handles.pyx)."""
    check_usable(queue)
    if handles_pickled != <uint64_t>mark:
        deposit_handles(queue.ring, mark)


def _rebuild_queue(cls, handle, simple):
    cdef QueueCore queue = cls.__new__(cls)
    queue.ring = attach_ring(handle)
    queue.simple = simple
    return queue
