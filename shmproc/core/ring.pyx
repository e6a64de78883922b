# ring: the variable-length message ring under Queue and Pipe (queues issue).
#
# One ring is one direction of messages in a channel segment (ring.h). Writers append records at the
# tail, readers take them at the head; both indices count bytes ever written/read and never wrap, the
# position in the data area is index & (capacity - 1).
#
# Writers hold the producer lock while they reserve, copy and publish a record; readers hold the
# consumer lock while they copy a record out and free it. The two locks are never held together and
# the sides meet only at the indices (tail published with release, head freed with release), so one
# writer and one reader never wait for each other. Why locks and not a CAS on the tail: a writer
# killed at any instant must leave a ring that others can go on using. With the lock, a record is
# invisible until its writer has written all of it and moved the tail, and the lock word names its
# holder's pid, so a writer killed inside is detected and its lock taken over (lock.pyx) without a
# half-written record to skip. With a CAS reservation the window between reserving and writing the
# header would leave readers stuck on a record of unknown length and owner. The locks cost one
# uncontended compare-and-swap per call (or per batch: put_many/get_many move many records under one
# acquisition and one index update). The invariants are in docs/internals/ring.md.
#
# Waiting goes through wait.pyx: readers sleep on the low half of the tail, writers on the low half of
# the head, each with a sleeper count so that a put or get nobody waits for makes no system call.
#
# Each ring also has a notify pipe, for select(): it is kept readable while the ring holds a message,
# but only once someone has asked for fileno() (no system call per message otherwise). A Connection's
# reader also uses it to learn that every writer is gone: the pipe's write ends are held by the
# writing Connections only, so POLLHUP on the read end means EOF, however the peer went away.

from shmproc.includes.ring cimport *
from posix.mman cimport MAP_POPULATE
from posix.unistd cimport read, write
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_FromDouble
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer

import queue as _queue

include "core/codec.pyx"
include "core/spill.pyx"
include "core/tasks.pyx"

Empty = _queue.Empty
Full = _queue.Full

QUEUE_CAPACITY = 4 << 20
PIPE_CAPACITY = 1 << 20
cdef uint64_t MIN_CAPACITY = 4096
cdef uint64_t MAX_CAPACITY = 1 << 30
# A queue's ring is growable: this much address space, of which only the window's pages are
# allocated while readers keep up (see "Growth" in docs/internals/ring.md). multiprocessing's Queue
# buffers without bound in its feeder; ours holds up to this many bytes of small records (large
# messages live in the spill file), or until /dev/shm is full (OSError), before put() blocks. Mapped
# address space costs nothing until touched; 16 GiB lets a process map thousands of queues.
cdef uint64_t GROWABLE_CAPACITY = 1 << 34
cdef uint64_t PAGE_SIZE = _os.sysconf("SC_PAGE_SIZE")
cdef Py_ssize_t PUT_BATCH = 256        # items encoded per producer-lock acquisition in put_many
cdef object _TAKEN_BY_ANOTHER = object()

cdef enum RingRole:
    ROLE_READ = 1
    ROLE_WRITE = 2
    ROLE_BOTH = 3


# How long a reader spins for a message before it sleeps. A Python peer needs a microsecond or
# two to answer, and a futex sleep + wake costs ~5-50 us on these VMs, so the ring spins longer than
# the locks do (ping-pong over two queues, processes on two cores: 0.5 us a round trip against ~10 us
# with the locks' adaptive spin). It yields the core every half microsecond, so that a peer sharing
# its core gets to run (same ping-pong on one core: 7 us; multiprocessing.Queue: 40 us).
cdef int64_t RING_SPIN_NS = 20_000
cdef int64_t RING_YIELD_EVERY_NS = 500


cdef bint spin_for(uint32_t *word, uint32_t expected, int64_t budget_ns) noexcept nogil:
    """Spin, yielding the core every RING_YIELD_EVERY_NS, up to budget_ns while *word == expected;
    True if it changed."""
    cdef int64_t now = shm_monotonic_ns()
    cdef int64_t until = now + budget_ns
    cdef int64_t next_yield = now + RING_YIELD_EVERY_NS
    cdef int i
    while True:
        for i in range(64):
            if shm_load_u32(word) != expected:
                return True
            shm_cpu_relax()
        now = shm_monotonic_ns()
        if now >= until:
            return False
        if now >= next_yield:
            sched_yield()
            next_yield = now + RING_YIELD_EVERY_NS


cdef inline uint32_t *low_half(uint64_t *index) noexcept nogil:
    # The futex word of a 64-bit index: its low half, at its own address (ring.h checks endianness).
    return <uint32_t *>index


cdef inline uint64_t record_size(uint64_t payload) noexcept nogil:
    return sizeof(shm_record_header_t) + align_up(payload, 8)


cdef inline bint take_side_lock(shm_ring_t *ring, bint producer, int64_t deadline) except -1:
    """Hold a side's lock (1) or report the deadline passed (0). A holder killed inside is taken over
    silently: the ring is consistent at every instant of a holder's work (see the top of the file),
    but for the index and count it may have been storing, which its redo slot completes."""
    cdef shm_lock_t *lock = &ring.producer_lock if producer else &ring.consumer_lock
    cdef uint32_t dead_owner = 0
    if lock_try(lock, shm_current_pid()):
        return 1
    if not lock_acquire(lock, deadline, &dead_owner):
        return 0
    if dead_owner and producer:
        redo(&ring.producer_redo, &ring.tail, &ring.puts)
    elif dead_owner:
        redo(&ring.consumer_redo, &ring.head, &ring.gets)
    return 1


cdef inline void publish(shm_redo_t *slot, uint64_t *index, uint64_t *count, uint64_t new_index,
                         uint64_t new_count) noexcept nogil:
    """Under a side's lock: store its count, then its index (tail and puts: publish the records
    below tail; head and gets: free the bytes below head), through its redo slot (ring.h). Every
    store is a release: a process killed at any point leaves a prefix of them, in this order."""
    slot.index = new_index
    slot.count = new_count
    shm_store_u32(&slot.active, 1)
    shm_store_u64(count, new_count)
    shm_store_u64(index, new_index)
    shm_store_u32(&slot.active, 0)


cdef inline void redo(shm_redo_t *slot, uint64_t *index, uint64_t *count) noexcept nogil:
    """Having taken a side's lock over from a dead holder: complete the publish it was inside."""
    if shm_load_u32(&slot.active):
        publish(slot, index, count, slot.index, slot.count)


cdef class MessageRing:
    """One direction of messages in a shared channel: the core of Queue and of a Connection."""
    cdef Segment segment
    cdef SpillFile spill
    cdef shm_ring_t *ring
    cdef char *data
    cdef uint64_t capacity            # of the data area (address space; see ring.h)
    cdef uint64_t mask
    cdef uint64_t window              # where writers wrap when readers have made room
    cdef uint64_t wrap_limit          # a record ending past this wraps (or grows the ring)
    cdef bint growable                # window < capacity: writers may go past the window
    cdef uint64_t leap_room           # bytes a writer leaves free before the readers (growable: 8)
    cdef uint64_t spill_threshold     # records with more payload than this go to the spill file
    cdef uint64_t cached_head         # producer's last view of head (a lower bound), under its lock
    cdef uint64_t cached_gets
    cdef uint64_t cached_tail         # consumer's last view of tail (a lower bound), under its lock
    cdef uint64_t local_head          # consumer's head and gets while it holds the consumer lock
    cdef uint64_t local_gets
    cdef shm_task_holder_t *holders   # the channel's JoinableQueue task holders
    cdef int holder                   # this process's holder slot, once holder_pid is its pid
    cdef uint32_t holder_pid
    cdef int ring_index
    cdef int role
    cdef int read_fd                  # this object's end of the notify pipe, or -1
    cdef int write_fd
    cdef bint eof_detection           # a Connection's reader: every writer gone means EOF
    cdef bint closed
    cdef object __weakref__

    def __cinit__(self):
        self.read_fd = -1
        self.write_fd = -1

    def __dealloc__(self):
        self.close_fds()

    # -- binding to shared memory ------------------------------------------------------------

    cdef int bind(self, Segment segment, SpillFile spill, int index, int role, int read_fd,
                  int write_fd, bint eof_detection) except -1:
        cdef shm_channel_t *channel = <shm_channel_t *>(segment.base + SHM_SEGMENT_HEADER)
        if channel.magic != SHM_CHANNEL_MAGIC or index >= <int>channel.nrings:
            raise ValueError("not a shmproc channel")
        self.segment, self.spill = segment, spill
        self.ring = &channel.ring[index]
        self.holders = channel.holder
        self.data = segment.base + self.ring.data_offset
        self.capacity = self.ring.capacity
        self.mask = self.capacity - 1
        self.window = self.ring.window
        self.growable = self.window < self.capacity
        self.leap_room = sizeof(shm_record_header_t) if self.growable else 0
        # A growable ring keeps room for a SKIP header inside its window, so that a ring which
        # never lags never allocates past it.
        self.wrap_limit = self.window - sizeof(shm_record_header_t) if self.growable else self.window
        self.spill_threshold = self.window // 4
        self.ring_index, self.role = index, role
        self.read_fd, self.write_fd = read_fd, write_fd
        self.eof_detection = eof_detection
        self.cached_head = shm_load_u64(&self.ring.head)
        self.cached_tail = shm_load_u64(&self.ring.tail)
        self.cached_gets = shm_load_u64(&self.ring.gets)
        return 0

    def _open_queue(self, maxsize, joinable, capacity):
        """Make this object a new queue's only ring (Queue.__init__)."""
        segment, spill = create_channel(1, capacity, maxsize, joinable, True)
        read_fd, write_fd = _os.pipe2(_os.O_NONBLOCK | _os.O_CLOEXEC)
        self.bind(segment, spill, 0, ROLE_BOTH, read_fd, write_fd, False)

    def __reduce__(self):
        return (_rebuild_ring, (type(self), self.handle()))

    def handle(self):
        """What another process needs to use this ring in the same role: its channel's segment and
        spill file, and the notify pipe ends this object holds.

        How each descriptor travels (with a process start, or by reference, kept for the receiver
        by the keeper once this handle is put into a ring) is core/handles.pyx's business."""
        cdef bint spawning = is_spawning()
        return (self.segment.id, self.segment.size, fd_reference(self.segment.fd, spawning),
                self.spill.id, fd_reference(self.spill.fd, spawning),
                self.ring_index, self.role, self.eof_detection,
                fd_reference(self.read_fd, spawning), fd_reference(self.write_fd, spawning))

    cdef int attach(self, handle) except -1:
        segment_id, size, segment_fd, spill_id, spill_fd, index, role, eof, read_fd, write_fd = handle
        segment = Segment.attach(segment_id, size, segment_fd)
        cdef shm_channel_t *channel = <shm_channel_t *>((<Segment>segment).base + SHM_SEGMENT_HEADER)
        if channel.magic != SHM_CHANNEL_MAGIC or memcmp(channel.spill_id, <char *>spill_id, 16):
            raise ValueError("not a shmproc channel")
        spill = SpillFile.attach((spill_id, spill_fd), segment, &channel.spill)
        self.bind(segment, spill, index, role, -1, -1, eof)
        self.read_fd = adopt_pipe_end(read_fd, _os.O_RDONLY)
        self.write_fd = adopt_pipe_end(write_fd, _os.O_WRONLY)
        return 0

    cdef void close_fds(self) noexcept:
        if self.read_fd >= 0:
            close(self.read_fd)
            self.read_fd = -1
        if self.write_fd >= 0:
            close(self.write_fd)
            self.write_fd = -1

    def _close(self):
        """Stop using the ring from this object. A writer's close wakes the readers, so a reader
        blocked on an empty ring re-checks for EOF at once."""
        if self.closed:
            return
        self.closed = True
        had_writer = self.write_fd >= 0
        self.close_fds()
        if had_writer and self.ring != NULL:
            shm_futex_wake(low_half(&self.ring.tail), SHM_WAKE_ALL)

    @property
    def _closed(self):
        return self.closed

    def _closed_error(self):
        return ValueError(f"{type(self).__name__} {self!r} is closed")

    cdef inline int check_open(self) except -1:
        if self.closed:
            raise self._closed_error()
        return 0

    # -- producing -----------------------------------------------------------------------------

    def put(self, obj, block=True, timeout=None):
        """Append obj (pickled here, in the caller: an unpicklable object raises and leaves the ring
        untouched). Blocks while the ring is full (or holds maxsize messages); queue.Full when not
        blocking or when timeout passes."""
        cdef encoded_t item
        cdef int64_t deadline = NO_DEADLINE
        self.check_open()
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        cdef uint64_t pickled_before = handles_pickled
        owner = encode_object(obj, &item)
        if handles_pickled != pickled_before:
            self.deposit_handles(pickled_before)
        if self.send_encoded(&item, owner, block, deadline) == 0:
            raise Full
        return None

    def put_nowait(self, obj):
        return self.put(obj, False)

    def _send_bytes(self, buffer, Py_ssize_t offset=0, size=None):
        """Connection.send_bytes: append the bytes of a buffer as they are."""
        cdef encoded_t item
        self.check_open()
        view = memoryview(buffer)
        if view.itemsize > 1:
            view = view.cast("B")
        cdef Py_ssize_t length = len(view)
        if offset < 0:
            raise ValueError("offset is negative")
        if length < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = length - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > length:
            raise ValueError("buffer length < offset + size")
        owner = encode_raw(view[offset:offset + size], &item)
        self.send_encoded(&item, owner, True, NO_DEADLINE)

    def put_many(self, items, block=True, timeout=None):
        """Append every item of an iterable, in order, many per lock acquisition and index update.

        Items are pickled in the caller: if one cannot be, the items before it have been put and the
        error is raised. If the ring stays full past the timeout (or at once, when not blocking),
        queue.Full is raised; its `count` attribute says how many items were put."""
        cdef encoded_t batch[256]
        cdef Py_ssize_t count, written, total = 0
        cdef int64_t deadline = NO_DEADLINE
        self.check_open()
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
                self.deposit_handles(pickled_before)
            written = self.send_batch(batch, count, owners, block, deadline)
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

    cdef int deposit_handles(self, uint64_t pickled_before) except -1:
        """The messages about to be put hold handles: hand their descriptors to the keeper, tied
        to this ring (its notify write end tells the keeper when no process can read it any more),
        before any of them is published, so they outlive this process (core/handles.pyx)."""
        ring = self.segment.id + (<uint32_t>self.ring_index).to_bytes(4, "little") + bytes(4)
        return deposit_pending(pickled_before, ring, self.write_fd)

    cdef int send_encoded(self, encoded_t *item, object owner, bint block, int64_t deadline) except -1:
        """1 when written, 0 when the ring stayed full (Full)."""
        owners = [owner] if item.kind == SHM_RECORD_BUFFERS or self.must_spill(item) else None
        return <int>self.send_batch(item, 1, owners, block, deadline)

    cdef inline bint must_spill(self, encoded_t *item) noexcept:
        return record_size(item.length) > self.spill_threshold

    cdef Py_ssize_t send_batch(self, encoded_t *items, Py_ssize_t count, list owners, bint block,
                               int64_t deadline) except -1:
        """Write items[0:count] in order; return how many were written before the ring stayed full.

        A run of ring-sized items goes in under one lock acquisition (as many as fit). An item that
        must spill goes alone, after everything before it is published: a batch must never hold
        spill slots for records it has not published, or it could wait forever for a slot that only
        a reader of those records would free."""
        cdef Py_ssize_t done = 0, run, written
        cdef uint32_t observed = 0
        cdef WaitResult result
        cdef bint spin = True
        cdef bint spilled, inline
        while done < count:
            spilled = False
            run = 1
            if self.must_spill(&items[done]):
                inline = self.can_inline(&items[done])
                spilled = self.spill_out(&items[done], owners[done], block and not inline, deadline)
                if not spilled and not inline:
                    return done
            else:
                while done + run < count and not self.must_spill(&items[done + run]):
                    run += 1
            try:
                while True:
                    if not take_side_lock(self.ring, True, deadline):
                        written = 0
                        break
                    try:
                        written = self.write_locked(items + done, run, owners, done, &observed)
                    finally:
                        lock_release(&self.ring.producer_lock)
                    if written or not block:
                        break
                    with nogil:
                        result = wait_while_equal(low_half(&self.ring.head), observed,
                                                  &self.ring.space_sleepers, deadline, spin)
                    spin = False
                    if result == WAIT_TIMEOUT:
                        block = False       # one last look, then Full
                    elif result != WAIT_CHANGED:
                        run_signal_handlers()
                        self.check_readers_present()
            except BaseException:
                if spilled:
                    self.spill.release_slot(items[done].spill.slot)
                raise
            if written == 0:
                if spilled:
                    self.spill.release_slot(items[done].spill.slot)
                return done
            done += written
            self.after_publish()
        return done

    cdef Py_ssize_t write_locked(self, encoded_t *items, Py_ssize_t count, list owners,
                                 Py_ssize_t owner_base, uint32_t *observed_head) except -1:
        """Under the producer lock: write as many of items as fit and publish them with one tail
        store. When none fits, *observed_head is the head value the decision was made on."""
        cdef shm_ring_t *ring = self.ring
        cdef uint64_t tail = ring.tail, puts = ring.puts
        cdef uint64_t need, position, total
        cdef shm_record_header_t *header
        cdef encoded_t *item
        cdef Py_ssize_t n = 0
        cdef bint refreshed = False
        cdef uint64_t record_at
        while n < count:
            item = &items[n]
            need = record_size(item.length)
            position = tail & self.mask
            total = self.placement(tail, puts, need, refreshed)
            if total == 0:
                if refreshed:
                    break
                # Read the consumers' indices once per batch, and before deciding to wait (or to
                # grow), so that a head moving after this read wakes the wait.
                self.cached_head = shm_load_u64(&ring.head)
                self.cached_gets = shm_load_u64(&ring.gets)
                observed_head[0] = <uint32_t>self.cached_head
                refreshed = True
                continue
            record_at = (tail + total - need) & self.mask
            try:
                # Allocated: the record, and room for the SKIP header that may follow it (so a wrap
                # never needs to grow, and a full /dev/shm cannot stop the ring from wrapping).
                self.reserve_locked(min(self.capacity, record_at + need + sizeof(shm_record_header_t)))
            except OSError:
                if n:
                    break         # publish what is written; the next put raises
                raise
            if record_at != position:
                self.write_skip_locked(tail, total - need)
                if record_at == 0 and self.growable:
                    self.trim_locked(position, need, self.cached_head == tail)
            header = <shm_record_header_t *>(self.data + record_at)
            header.length = <uint32_t>item.length
            header.kind = item.kind
            if item.kind == SHM_RECORD_BUFFERS:
                write_encoded_layout(<char *>(header + 1), item, owners[owner_base + n])
            else:
                copy_unlocked(<char *>(header + 1), item.data, item.length)
                if item.kind == SHM_RECORD_SPILL:
                    self.spill.queue_slot(item.spill.slot)
            tail += total
            puts += 1
            n += 1
        if n:
            publish(&ring.producer_redo, &ring.tail, &ring.puts, tail, puts)
        return n

    cdef inline uint64_t placement(self, uint64_t tail, uint64_t puts, uint64_t need,
                                   bint fresh) noexcept:
        """How far the tail moves to write a record of need bytes now, or 0 (no room; or, with a
        stale view of the readers, none that this view shows: look again before growing). Either
        need (the record goes at the tail), or a SKIP header at the tail and the record where it
        points: at the start of the next lap (a wrap), or, in a growable ring, past the end of the
        lap a lagging reader is still in (a leap). The common case is inline; the rest is not."""
        if (tail & self.mask) + need <= self.wrap_limit and self.has_room(tail, need, puts + 1):
            return need
        return self.placement_elsewhere(tail, puts, need, fresh)

    cdef uint64_t placement_elsewhere(self, uint64_t tail, uint64_t puts, uint64_t need,
                                      bint fresh) noexcept:
        """placement() when the record does not go at the tail inside the window.

        Past the window, going back to the start is preferred whenever the readers have freed
        room there; only a ring whose readers lag goes on into the sparse rest of its data area
        (growable rings; for the others the window is the whole data area). A writer that has gone
        back to the start and meets a reader that stopped in the previous lap leaps over the rest
        of that lap instead of waiting for it."""
        cdef uint64_t position = tail & self.mask
        cdef uint64_t next_lap = tail - position + self.capacity
        cdef uint64_t target
        if position + need > self.wrap_limit and position > 0 and self.has_room(next_lap, need, puts + 1):
            return next_lap - tail + need
        if not fresh or not self.growable:
            return 0
        # A lap always ends with a SKIP header (lap_end must name it), so it never fills to the end.
        if (position + need + sizeof(shm_record_header_t) <= self.capacity
                and self.has_room(tail, need, puts + 1)):
            return need
        target = self.leap_target(tail, need)
        if target and self.has_room(tail - position + target, need, puts + 1):
            return target - position + need
        return 0

    cdef inline uint64_t leap_target(self, uint64_t tail, uint64_t need) noexcept:
        """Where a record of need bytes would go past the end of the previous lap: just after the
        SKIP header that closed it (lap_end); 0 if that is behind the tail or leaves no room for the
        header that closes this lap. Whether the readers are in that lap is has_room's to say."""
        cdef uint64_t target = (self.ring.lap_end & self.mask) + sizeof(shm_record_header_t)
        if target <= (tail & self.mask) or target + need + sizeof(shm_record_header_t) > self.capacity:
            return 0
        return target

    cdef inline void write_skip_locked(self, uint64_t tail, uint64_t distance) noexcept:
        """Under the producer lock: a SKIP header at the tail, standing for the next distance bytes.
        One that ends the lap (a wrap) is named by lap_end, stored here, before the tail that
        publishes it: a writer killed in between leaves lap_end in the tail's own lap, which is not
        taken for the previous lap's end (past_lagging_reader)."""
        cdef uint64_t position = tail & self.mask
        cdef shm_record_header_t *header = <shm_record_header_t *>(self.data + position)
        header.length = <uint32_t>(distance // 8)
        header.kind = SHM_RECORD_SKIP
        if position + distance == self.capacity:
            self.ring.lap_end = tail

    cdef inline int reserve_locked(self, uint64_t end) except -1:
        """Under the producer lock: make sure the pages of the data area below end are allocated
        (a growable ring allocates them a window at a time as its writers go past the window)."""
        cdef uint64_t reserved = self.ring.reserved
        cdef uint64_t wanted
        if end <= reserved:
            return 0
        wanted = align_up(end, self.window)
        self.segment.allocate_range(self.ring.data_offset + reserved, wanted - reserved)
        self.ring.reserved = wanted
        return 0

    cdef void trim_locked(self, uint64_t position, uint64_t need, bint empty) noexcept:
        """Under the producer lock, going back to the start of a growable ring from position (a SKIP
        header is there now) to write need bytes at the start: give back the pages past the window
        that nobody will read, if more than a window of them is allocated. The room check for
        the wrap says the readers are in this lap, whose records all lie before the SKIP, so
        everything past it is read already; so is everything before it when the ring is empty (the
        SKIP's own page must stay, for the readers to find it)."""
        cdef uint64_t reserved = self.ring.reserved
        cdef uint64_t keep = align_up(max(need + sizeof(shm_record_header_t), self.window), self.window)
        cdef uint64_t skip_page = position & ~(PAGE_SIZE - 1)
        if not empty:
            keep = max(keep, align_up(position + sizeof(shm_record_header_t), self.window))
        if reserved <= keep + self.window:
            return
        # Shrink `reserved` first: a writer killed in between leaks pages, but the next one never
        # writes into pages it believes allocated and are not (a SIGBUS on a full /dev/shm). A SKIP
        # page left past `reserved` is allocated again, harmlessly, by the next growth over it.
        self.ring.reserved = keep
        if empty and skip_page >= keep:
            self.segment.release_range(self.ring.data_offset + keep, skip_page - keep)
            keep = skip_page + PAGE_SIZE
        if reserved > keep:
            self.segment.release_range(self.ring.data_offset + keep, reserved - keep)

    cdef inline bint can_inline(self, encoded_t *item) noexcept:
        """A message too large for the ring's window may still be written inline in a growable
        ring, when no spill slot is free (so that put() on an unbounded queue never waits)."""
        return self.growable and item.length <= <uint64_t>UINT32_MAX - 8

    cdef inline bint has_room(self, uint64_t start, uint64_t need, uint64_t new_puts) noexcept:
        """May a record of need bytes be written at index start (maxsize allowing)? Yes if no unread
        byte is in its way: the readers are less than a lap behind its end (a growable ring also
        keeps 8 bytes free before them, for the SKIP header of a later leap), or past_lagging_reader."""
        if (start + need + self.leap_room - self.cached_head > self.capacity
                and not self.past_lagging_reader(start)):
            return False
        return self.ring.maxsize == 0 or new_puts - self.cached_gets <= self.ring.maxsize

    cdef bint past_lagging_reader(self, uint64_t start) noexcept:
        """After a leap: the readers are in the lap before start's, and start is past the SKIP
        header that closed that lap, so beyond the readers' last record."""
        cdef uint64_t lap = start & ~self.mask
        cdef uint64_t lap_end = self.ring.lap_end
        return (self.growable
                and (self.cached_head & ~self.mask) + self.capacity == lap
                and (lap_end & ~self.mask) + self.capacity == lap
                and (start & self.mask) >= (lap_end & self.mask) + sizeof(shm_record_header_t))

    cdef inline void after_publish(self) noexcept:
        wake_sleepers(low_half(&self.ring.tail), &self.ring.data_sleepers, SHM_WAKE_ALL)
        if shm_load_relaxed_u32(&self.ring.notify_enabled):
            self.signal_readers()

    cdef int spill_out(self, encoded_t *item, object owner, bint block, int64_t deadline) except -1:
        """Move a too-large payload into a spill slot; item becomes a SPILL record. 0 on timeout."""
        if self.spill.write_message(item, owner, block, deadline) < 0:
            return 0
        item.kind = SHM_RECORD_SPILL
        item.length = sizeof(shm_spill_ref_t)
        item.data = <const char *>&item.spill
        return 1

    cdef int check_readers_present(self) except -1:
        """A Connection's writer blocked on a full ring: if every reader is gone, the data would
        never be read (multiprocessing raises BrokenPipeError too)."""
        cdef pollfd entry
        if not self.eof_detection_for_writer():
            return 0
        entry.fd, entry.events, entry.revents = self.write_fd, 0, 0
        if poll(&entry, 1, 0) > 0 and entry.revents & POLLERR:
            raise BrokenPipeError(errno.EPIPE, "the reading end of the pipe is closed")
        return 0

    cdef inline bint eof_detection_for_writer(self) noexcept:
        return self.role == ROLE_WRITE and self.write_fd >= 0

    # -- consuming -----------------------------------------------------------------------------

    def get(self, block=True, timeout=None):
        """Remove and return the oldest message. Blocks while the ring is empty; queue.Empty when
        not blocking or when timeout passes. A Connection's reader raises EOFError once the ring is
        drained and every writer is gone."""
        return self.receive(block, timeout, False)

    def get_nowait(self):
        return self.receive(False, None, False)

    def _recv_bytes(self):
        """Connection.recv_bytes: the next message's bytes."""
        return self.receive(True, None, True)

    cdef object receive(self, bint block, object timeout, bint as_bytes):
        cdef int64_t deadline = NO_DEADLINE
        cdef uint32_t kind = 0
        cdef shm_spill_ref_t ref
        self.check_open()
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        while True:
            self.wait_for_record(block, deadline)
            raw = self.take_one(&kind, &ref)
            if raw is not _TAKEN_BY_ANOTHER:
                return self.finish(kind, raw, &ref, as_bytes)
            if not block:
                raise Empty

    def get_many(self, max_messages=1_000_000_000, block=True, timeout=None):
        """Remove and return up to max_messages messages (at least one) as a list, oldest first, all
        under one lock acquisition and head update. Blocks while the ring is empty, like get()."""
        cdef int64_t deadline = NO_DEADLINE
        cdef Py_ssize_t limit = max_messages
        self.check_open()
        if limit < 1:
            raise ValueError("max_messages must be at least 1")
        if block and timeout is not None:
            deadline = deadline_after(timeout)
        while True:
            self.wait_for_record(block, deadline)
            messages = self.take_many(limit)
            if messages:
                return messages
            if not block:
                raise Empty

    cdef int wait_for_record(self, bint block, int64_t deadline) except -1:
        """Return once a record is (very likely) there; raise Empty or EOFError otherwise."""
        cdef uint32_t observed
        cdef WaitResult result
        cdef bint spin = True, changed
        while True:
            if self.has_record(&observed):
                return 0
            if block and spin:
                with nogil:
                    changed = spin_for(low_half(&self.ring.tail), observed, RING_SPIN_NS)
                spin = False
                if changed:
                    continue
            if self.eof_detection and self.writers_gone():
                if not self.has_record(&observed):
                    raise EOFError
                return 0
            if not block:
                raise Empty
            if self.eof_detection and releases_unsettled:
                settle_releases()       # the keeper may be about to close a writer's end
                continue
            with nogil:
                result = wait_while_equal(low_half(&self.ring.tail), observed,
                                          &self.ring.data_sleepers, deadline, False)
            if result == WAIT_TIMEOUT:
                block = False
            elif result != WAIT_CHANGED:
                run_signal_handlers()

    cdef bint has_record(self, uint32_t *observed_tail) noexcept:
        """Lock-free look: is there a message record between head and tail? The answer may be stale
        by the time the caller acts (another reader), which take_one copes with."""
        # Indices only: a SKIP is always published together with the record after it, and the bytes
        # at a head read outside the consumer lock may be a lap old, in pages already given back
        # (touching those would allocate them again).
        cdef uint64_t tail = shm_load_u64(&self.ring.tail)
        observed_tail[0] = <uint32_t>tail
        return shm_load_u64(&self.ring.head) != tail

    cdef object take_one(self, uint32_t *kind, shm_spill_ref_t *ref):
        """Take the oldest record; _TAKEN_BY_ANOTHER if another reader was first."""
        cdef shm_record_header_t *header
        take_side_lock(self.ring, False, NO_DEADLINE)
        self.local_head, self.local_gets = self.ring.head, self.ring.gets
        try:
            header = self.next_record_locked()
            if header == NULL:
                raw = _TAKEN_BY_ANOTHER
            else:
                raw = self.take_record_locked(header, kind, ref)
                self.rewind_if_drained_locked()
                self.quiet_if_drained_locked()
        finally:
            publish(&self.ring.consumer_redo, &self.ring.head, &self.ring.gets, self.local_head,
                    self.local_gets)
            lock_release(&self.ring.consumer_lock)
        wake_sleepers(low_half(&self.ring.head), &self.ring.space_sleepers, SHM_WAKE_ALL)
        if raw is _TAKEN_BY_ANOTHER:
            return raw
        if self.ring.joinable:
            self.count_tasks(1, 0)
        if kind[0] == SHM_RECORD_SPILL:
            self.spill.hold_slot(ref.slot)
        return raw

    cdef list take_many(self, Py_ssize_t limit):
        cdef shm_record_header_t *header
        cdef uint32_t kind = 0
        cdef shm_spill_ref_t ref
        cdef list messages = []
        cdef list pending = []            # (index, kind, raw) of messages that still need decoding
        take_side_lock(self.ring, False, NO_DEADLINE)
        self.local_head, self.local_gets = self.ring.head, self.ring.gets
        try:
            while len(messages) < limit:
                header = self.next_record_locked()
                if header == NULL:
                    break
                raw = self.take_record_locked(header, &kind, &ref)
                if kind == SHM_RECORD_SPILL:
                    raw = PyBytes_FromStringAndSize(<char *>&ref, sizeof(ref))
                if needs_finishing(kind):
                    pending.append((len(messages), kind, raw))
                messages.append(raw)
            self.rewind_if_drained_locked()
            self.quiet_if_drained_locked()
        finally:
            publish(&self.ring.consumer_redo, &self.ring.head, &self.ring.gets, self.local_head,
                    self.local_gets)
            lock_release(&self.ring.consumer_lock)
        wake_sleepers(low_half(&self.ring.head), &self.ring.space_sleepers, SHM_WAKE_ALL)
        if messages and self.ring.joinable:
            self.count_tasks(len(messages), 0)
        for index, kind, raw in pending:
            if kind == SHM_RECORD_SPILL:
                memcpy(&ref, PyBytes_AS_STRING(raw), sizeof(ref))
                self.spill.hold_slot(ref.slot)
        cdef Py_ssize_t done = 0
        try:
            for index, kind, raw in pending:
                if kind == SHM_RECORD_SPILL:
                    memcpy(&ref, PyBytes_AS_STRING(raw), sizeof(ref))
                done += 1
                messages[index] = self.finish(kind, raw, &ref, False)
        except BaseException:
            # A message that cannot be unpickled is raised here, and the batch is lost with it (as
            # it would be from a failed get()); its later spill slots must not stay held.
            for index, kind, raw in pending[done:]:
                if kind == SHM_RECORD_SPILL:
                    memcpy(&ref, PyBytes_AS_STRING(raw), sizeof(ref))
                    self.spill.release_slot(ref.slot)
            raise
        return messages

    cdef shm_record_header_t *next_record_locked(self) noexcept:
        """Under the consumer lock: the record at local_head (skipping padding), or NULL if none."""
        cdef shm_ring_t *ring = self.ring
        cdef shm_record_header_t *header
        cdef uint64_t head = self.local_head
        while True:
            # >=, not ==: other readers move the head past this process's view of the tail.
            if head >= self.cached_tail:
                self.cached_tail = shm_load_u64(&ring.tail)
                if head == self.cached_tail:
                    self.local_head = head
                    return NULL
            header = <shm_record_header_t *>(self.data + (head & self.mask))
            if header.kind != SHM_RECORD_SKIP:
                self.local_head = head
                return header
            head += <uint64_t>header.length * 8

    cdef void rewind_if_drained_locked(self) noexcept:
        """Under the consumer lock: if this reader has drained a ring that grew, give back the pages
        past the window now, rather than at the next put that wraps (a queue that bursts and then
        idles would keep them), when the producer lock is free. A tail past the window first goes
        back to the start: a writer's wrap with no record after it (a SKIP header at the tail,
        published with the tail like any record), which this reader then consumes. A reader killed
        anywhere in it leaves what a killed writer or reader would (invariant 3)."""
        cdef uint64_t tail = self.local_head
        cdef uint64_t position = tail & self.mask
        if not self.growable or self.ring.reserved <= 2 * self.window:
            return
        if not lock_try(&self.ring.producer_lock, shm_current_pid()):
            return
        if shm_load_u64(&self.ring.tail) == tail:
            if position >= self.window:
                self.write_skip_locked(tail, self.capacity - position)
            self.trim_locked(position, 0, True)
            if position >= self.window:
                tail += self.capacity - position
                publish(&self.ring.producer_redo, &self.ring.tail, &self.ring.puts, tail,
                        self.ring.puts)
                self.cached_tail = self.local_head = tail
        lock_release(&self.ring.producer_lock)

    cdef object take_record_locked(self, shm_record_header_t *header, uint32_t *kind,
                                   shm_spill_ref_t *ref):
        """Under the consumer lock: copy the record at local_head out and move past it. The record
        is consumed even if decoding it fails, so one bad message cannot block the ring."""
        cdef const char *payload = <const char *>(header + 1)
        cdef uint32_t length = header.length
        kind[0] = header.kind
        try:
            if kind[0] == SHM_RECORD_SPILL:
                memcpy(ref, payload, sizeof(shm_spill_ref_t))
                return None
            if kind[0] == SHM_RECORD_BUFFERS:
                return PyByteArray_FromStringAndSize(payload, length)
            return decode_scalar(kind[0], payload, length)
        finally:
            self.local_head += record_size(length)
            self.local_gets += 1

    cdef object finish(self, uint32_t kind, object raw, shm_spill_ref_t *ref, bint as_bytes):
        """Outside the lock: turn what take_record_locked copied into the message."""
        if kind == SHM_RECORD_PICKLE:
            return raw if as_bytes else _loads(raw)
        if kind == SHM_RECORD_RAW:
            return raw if as_bytes else _loads(raw)
        if kind == SHM_RECORD_BUFFERS:
            return decode_layout(raw, PyByteArray_AS_STRING(raw), len(raw), as_bytes)
        if kind == SHM_RECORD_SPILL:
            return self.spill.receive(ref, as_bytes)
        return pickled_bytes(raw) if as_bytes else raw

    # -- select() support and EOF ----------------------------------------------------------------

    def fileno(self):
        """A descriptor that select() reports readable while a message (or EOF) is waiting."""
        if self.closed or (self.read_fd < 0 and self.write_fd < 0):
            raise OSError("handle is closed")
        if self.read_fd < 0:
            return self.write_fd
        if not shm_load_u32(&self.ring.notify_enabled):
            shm_store_u32(&self.ring.notify_enabled, 1)
            shm_fence_seq_cst()
            if shm_load_u64(&self.ring.tail) != shm_load_u64(&self.ring.head):
                self.signal_readers()
        return self.read_fd

    cdef void signal_readers(self) noexcept:
        """Make the notify pipe readable, unless it already is (one byte at most)."""
        cdef uint32_t expected = 0
        if not shm_cas_u32(&self.ring.notify_signaled, &expected, 1):
            return
        if self.write_fd >= 0:
            write(self.write_fd, b"!", 1)
        elif self.read_fd >= 0:
            # A reader re-arming the pipe: open a write end just for this byte.
            try:
                fd = reopen_own_fd(self.read_fd, _os.O_WRONLY | _os.O_NONBLOCK)
                _os.write(fd, b"!")
                _os.close(fd)
            except BaseException:
                pass

    cdef void quiet_if_drained_locked(self) noexcept:
        """Under the consumer lock: the ring is empty, so the notify pipe must stop being readable.
        Order matters: drain, then clear the flag, then look again (a writer that published in
        between saw the flag set and wrote nothing)."""
        cdef char sink[64]
        if self.read_fd < 0 or not shm_load_relaxed_u32(&self.ring.notify_enabled):
            return
        if not shm_load_u32(&self.ring.notify_signaled):
            return
        if shm_load_u64(&self.ring.tail) != self.local_head:
            return
        while read(self.read_fd, sink, sizeof(sink)) == sizeof(sink):
            pass
        shm_store_u32(&self.ring.notify_signaled, 0)
        shm_fence_seq_cst()
        if shm_load_u64(&self.ring.tail) != self.local_head:
            self.signal_readers()

    cdef bint writers_gone(self) noexcept:
        cdef pollfd entry
        if self.read_fd < 0:
            return False
        entry.fd, entry.events, entry.revents = self.read_fd, POLLIN, 0
        return poll(&entry, 1, 0) > 0 and (entry.revents & POLLHUP) != 0

    def _poll(self, timeout=0.0):
        """Connection.poll: wait up to timeout (None: forever) for a message or EOF."""
        cdef int64_t deadline = NO_DEADLINE if timeout is None else deadline_after(timeout)
        self.check_open()
        try:
            self.wait_for_record(timeout is None or timeout > 0, deadline)
        except Empty:
            return False
        except EOFError:
            return True
        return True

    # -- counts -------------------------------------------------------------------------------

    def qsize(self):
        """Messages in the ring now (approximate while others put and get)."""
        cdef uint64_t gets = shm_load_u64(&self.ring.gets)
        cdef uint64_t puts = shm_load_u64(&self.ring.puts)
        return puts - gets if puts > gets else 0

    def empty(self):
        return self.qsize() == 0

    def full(self):
        cdef uint64_t maxsize = self.ring.maxsize
        return maxsize != 0 and self.qsize() >= maxsize

    def _indices(self):
        """(head, tail, gets, puts, consumer lock word, producer lock word): for tests and debugging."""
        return (shm_load_u64(&self.ring.head), shm_load_u64(&self.ring.tail),
                shm_load_u64(&self.ring.gets), shm_load_u64(&self.ring.puts),
                shm_load_u32(&self.ring.consumer_lock.state), shm_load_u32(&self.ring.producer_lock.state))

    def _debug_take_lock(self, producer):
        """Take a side's lock and keep it (tests: a process killed while holding it)."""
        take_side_lock(self.ring, producer, NO_DEADLINE)

    @property
    def _maxsize(self):
        return self.ring.maxsize

    @property
    def _capacity(self):
        """The window: the capacity the ring was created with."""
        return self.window

    def _memory(self):
        """(bytes of the data area reserved, bytes of the channel segment the kernel has
        allocated): for tests of a growable ring's growth and trimming."""
        return self.ring.reserved, _os.fstat(self.segment.fd).st_blocks * 512

    cdef void count_tasks(self, int64_t taken, int64_t done) noexcept:
        """Add to this process's task holder slot (core/tasks.pyx), claiming one first if needed."""
        cdef shm_task_holder_t *slot
        if self.holder_pid != shm_current_pid():
            self.holder = claim_task_holder(self.holders)
            self.holder_pid = shm_current_pid()
        if self.holder < 0:
            return
        slot = &self.holders[self.holder]
        if taken:
            shm_store_u64(&slot.taken, slot.taken + <uint64_t>taken)
        if done:
            shm_store_u64(&slot.done, slot.done + <uint64_t>done)

    def _task_done(self):
        """JoinableQueue.task_done: every message ever put is a task, so the unfinished ones are
        puts - tasks_done, exact even when a producer dies mid-put (puts is published with its
        records, see publish)."""
        cdef uint64_t *done = &self.ring.tasks_done
        cdef uint64_t value = shm_load_u64(done)
        self.count_tasks(0, 1)
        while True:
            if value >= shm_load_u64(&self.ring.puts):
                self.count_tasks(0, -1)
                raise ValueError("task_done() called too many times")
            if shm_cas_u64(done, &value, value + 1):
                break
        if value + 1 == shm_load_u64(&self.ring.puts):
            wake_sleepers(low_half(done), &self.ring.join_sleepers, SHM_WAKE_ALL)

    def _join(self):
        cdef uint64_t *done = &self.ring.tasks_done
        cdef uint64_t value
        cdef WaitResult result
        cdef bint spin = True
        while True:
            # tasks_done first: a task_done() after this read changes the word the wait is on.
            value = shm_load_u64(done)
            if value >= shm_load_u64(&self.ring.puts):
                return
            with nogil:
                result = wait_while_equal(low_half(done), <uint32_t>value, &self.ring.join_sleepers,
                                          NO_DEADLINE, spin)
            spin = False
            if result != WAIT_CHANGED:
                run_signal_handlers()
                self.check_tasks_not_lost()

    cdef int check_tasks_not_lost(self) except -1:
        """join() between sleep slices: raise TaskLostError if a dead process holds tasks."""
        lost = lost_tasks(self.holders)
        if lost is None:
            return 0
        pids, count = lost
        raise TaskLostError(
            f"join() cannot return: process{'es' if len(pids) > 1 else ''} "
            f"{', '.join(map(str, pids))} died holding {count} unfinished task"
            f"{'s' if count > 1 else ''} of this JoinableQueue", pids, count)


cdef inline bint needs_finishing(uint32_t kind) noexcept:
    return (kind == SHM_RECORD_PICKLE or kind == SHM_RECORD_BUFFERS or kind == SHM_RECORD_SPILL
            or kind == SHM_RECORD_RAW)


cdef uint64_t checked_capacity(object capacity) except 0:
    cdef uint64_t value = capacity
    if value < MIN_CAPACITY or value > MAX_CAPACITY or value & (value - 1):
        raise ValueError(f"ring capacity must be a power of two between {MIN_CAPACITY} and "
                         f"{MAX_CAPACITY} bytes, not {capacity}")
    return value


cdef tuple create_channel(int nrings, object capacity, object maxsize, bint joinable,
                          bint growable):
    """A new channel segment with nrings empty rings, and its spill file. A growable ring (a
    queue's: one per channel) allocates only its window's pages now."""
    cdef uint64_t window = checked_capacity(capacity)
    cdef uint64_t ring_capacity = GROWABLE_CAPACITY if growable else window
    assert nrings == 1 or not growable
    if maxsize is None or maxsize <= 0:
        maxsize = 0
    cdef uint64_t header_end = align_up(SHM_SEGMENT_HEADER + sizeof(shm_channel_t), 4096)
    cdef uint64_t payload = header_end - SHM_SEGMENT_HEADER + nrings * ring_capacity
    cdef Segment segment = Segment.create(
        payload, header_end - SHM_SEGMENT_HEADER + window if growable else None)
    cdef shm_channel_t *channel = <shm_channel_t *>(segment.base + SHM_SEGMENT_HEADER)
    cdef SpillFile spill = SpillFile.create(segment, &channel.spill)
    memcpy(channel.spill_id, <char *>spill.id, 16)
    channel.nrings = nrings
    for i in range(nrings):
        channel.ring[i].capacity = ring_capacity
        channel.ring[i].window = window
        channel.ring[i].reserved = window
        channel.ring[i].data_offset = header_end + i * ring_capacity
        channel.ring[i].maxsize = maxsize
        channel.ring[i].joinable = joinable
    shm_store_u64(&channel.magic, SHM_CHANNEL_MAGIC)
    return segment, spill


def open_pipe_rings(bint duplex, capacity=PIPE_CAPACITY):
    """The rings of a new Pipe: [(reader, writer)] per direction. Each reader holds only the read end
    of its ring's notify pipe and each writer only the write end, so that a reader sees EOF when
    every writer, in every process, is gone."""
    cdef int nrings = 2 if duplex else 1
    segment, spill = create_channel(nrings, capacity, 0, False, False)
    pairs = []
    for i in range(nrings):
        read_fd, write_fd = _os.pipe2(_os.O_NONBLOCK | _os.O_CLOEXEC)
        reader = MessageRing.__new__(MessageRing)
        (<MessageRing>reader).bind(segment, spill, i, ROLE_READ, read_fd, -1, True)
        writer = MessageRing.__new__(MessageRing)
        (<MessageRing>writer).bind(segment, spill, i, ROLE_WRITE, -1, write_fd, False)
        pairs.append((reader, writer))
    return pairs


def _rebuild_ring(cls, handle):
    obj = cls.__new__(cls)
    (<MessageRing>obj).attach(handle)
    return obj
