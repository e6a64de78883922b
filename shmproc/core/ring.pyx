# ring: the byte protocol of one message ring over shm_ring_t (docs/internals/ring.md).
#
# One ring is one direction of messages in a channel segment (ring.h, channel.pyx). Writers append
# records at the tail, readers take them at the head; both indices count bytes ever written/read and
# never wrap, the position in the data area is index & (capacity - 1).
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
# The faces over a Ring are queue.pyx (Queue, SimpleQueue, JoinableQueue) and connection.pyx (the
# ends of a Pipe); the notify descriptor and EOF are notify.pyx's, task accounting is tasks.pyx's, and
# channel.pyx creates channels and moves rings between processes.

cdef uint64_t PAGE_SIZE = _os.sysconf("SC_PAGE_SIZE")
cdef object _TAKEN_BY_ANOTHER = object()

cdef enum RingRole:
    ROLE_READ = 1
    ROLE_WRITE = 2
    ROLE_BOTH = 3


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


@cython.final
cdef class Ring:
    """One direction of messages in a shared channel, as this process uses it: the core of a queue
    and of each end of a Pipe. Made by channel.pyx only."""

    def __cinit__(self):
        self.notify.read_fd = -1
        self.notify.write_fd = -1

    def __init__(self):
        raise TypeError("Ring objects are made by the core (a Queue or a Pipe), not directly")

    def __dealloc__(self):
        notify_close(&self.notify)

    # -- binding to shared memory ------------------------------------------------------------

    cdef int bind(self, Segment segment, SpillFile spill, int index, int role, int read_fd,
                  int write_fd, bint eof_detection, bint is_socket) except -1:
        cdef shm_channel_t *channel = <shm_channel_t *>(segment.base + SHM_SEGMENT_HEADER)
        if channel.magic != SHM_CHANNEL_MAGIC or index >= <int>channel.nrings:
            raise ValueError("not a shmproc channel")
        self.segment, self.spill = segment, spill
        self.ring = &channel.ring[index]
        self.tasks.holders = channel.holder
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
        notify_init(&self.notify, read_fd, write_fd, eof_detection, role == ROLE_WRITE, is_socket)
        self.cached_head = shm_load_u64(&self.ring.head)
        self.cached_tail = shm_load_u64(&self.ring.tail)
        self.cached_gets = shm_load_u64(&self.ring.gets)
        return 0

    cdef void close(self) noexcept:
        """Stop using the ring from this object. A writer's close wakes the readers, so a reader
        blocked on an empty ring re-checks for EOF at once."""
        if self.closed:
            return
        self.closed = True
        cdef bint had_writer = self.notify.write_fd >= 0
        notify_close(&self.notify)
        if had_writer and self.ring != NULL:
            shm_futex_wake(low_half(&self.ring.tail), SHM_WAKE_ALL)

    # -- producing -----------------------------------------------------------------------------

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
                        if written and self.notify.is_socket:
                            # Before the lock is let go (see signal_if_enabled), after a full
                            # fence: the tail's store must be visible before notifying is looked
                            # at, or a reader enabling it could see the ring empty while this
                            # writer sees it disabled (store-load reordering); a second look
                            # after the release would send a byte a reader cannot wait for.
                            shm_fence_seq_cst()
                            self.signal_if_enabled()
                    finally:
                        lock_release(&self.ring.producer_lock)
                    if written or not block:
                        break
                    with nogil:
                        result = wait_while_equal(low_half(&self.ring.head), observed,
                                                  &self.ring.space_sleepers, deadline, spin)
                    spin = False
                    if after_wait(result, check_readers_present, &self.notify):
                        block = False       # one last look, then Full
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
        # A pipe's ring looks after the lock's release (a full barrier, so after the tail's store).
        if not self.notify.is_socket:
            self.signal_if_enabled()

    cdef inline void signal_if_enabled(self) noexcept:
        # A duplex Pipe's ring signals under the producer lock, so that a reader about to read a
        # passed descriptor can wait until no notify byte for a message it already took is still
        # to come (notify_fileno).
        if shm_load_relaxed_u32(&self.ring.notify_mode):
            notify_signal(self.ring, &self.notify)

    cdef int spill_out(self, encoded_t *item, object owner, bint block, int64_t deadline) except -1:
        """Move a too-large payload into a spill slot; item becomes a SPILL record. 0 on timeout."""
        if self.spill.write_message(item, owner, block, deadline) < 0:
            return 0
        item.kind = SHM_RECORD_SPILL
        item.length = sizeof(shm_spill_ref_t)
        item.data = <const char *>&item.spill
        return 1

    # -- consuming -----------------------------------------------------------------------------

    cdef object receive(self, bint block, int64_t deadline, bint as_bytes):
        """The oldest message (its bytes if as_bytes). Blocks while the ring is empty; Empty when
        not blocking or when the deadline passes; EOFError for a Connection's reader once the ring
        is drained and every writer is gone."""
        cdef uint32_t kind = 0
        cdef shm_spill_ref_t ref
        while True:
            self.wait_for_record(block, deadline)
            raw = self.take_one(&kind, &ref)
            if raw is not _TAKEN_BY_ANOTHER:
                return self.finish(kind, raw, &ref, as_bytes)
            if not block:
                raise Empty

    cdef list receive_many(self, Py_ssize_t limit, bint block, int64_t deadline):
        """Up to limit messages (at least one), oldest first, under one lock acquisition and head
        update. Blocks while the ring is empty, like receive()."""
        while True:
            self.wait_for_record(block, deadline)
            messages = self.take_many(limit)
            if messages:
                return messages
            if not block:
                raise Empty

    cdef bint poll(self, bint block, int64_t deadline) except -1:
        """Connection.poll: is a message (or EOF) waiting, waiting until the deadline?"""
        try:
            self.wait_for_record(block, deadline)
        except Empty:
            return False
        except EOFError:
            return True
        return True

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
            if self.notify.eof_detection and notify_writers_gone(&self.notify):
                if not self.has_record(&observed):
                    raise EOFError
                return 0
            if not block:
                raise Empty
            if self.notify.eof_detection and releases_unsettled:
                settle_releases()       # the keeper may be about to close a writer's end
                continue
            with nogil:
                result = wait_while_equal(low_half(&self.ring.tail), observed,
                                          &self.ring.data_sleepers, deadline, False)
            if after_wait(result):
                block = False

    cdef bint has_record(self, uint32_t *observed_tail) noexcept:
        """Lock-free look: is there a message record between head and tail? The answer may be stale
        by the time the caller acts (another reader), which take_one copes with."""
        # Indices only: a SKIP is always published together with the record after it, and the bytes
        # at a head read outside the consumer lock may be a lap old, in pages already given back
        # (touching those would allocate them again).
        cdef uint64_t tail = shm_load_u64(&self.ring.tail)
        observed_tail[0] = <uint32_t>tail
        return shm_load_u64(&self.ring.head) != tail

    cdef inline void begin_take(self) noexcept:
        """Take the consumer lock, and this reader's working copy of head and gets."""
        take_side_lock(self.ring, False, NO_DEADLINE)
        self.local_head, self.local_gets = self.ring.head, self.ring.gets

    cdef inline void end_take(self) noexcept:
        """Publish what this reader took (the new head and gets), give the consumer lock back and
        wake the writers waiting for room."""
        publish(&self.ring.consumer_redo, &self.ring.head, &self.ring.gets, self.local_head,
                self.local_gets)
        lock_release(&self.ring.consumer_lock)
        wake_sleepers(low_half(&self.ring.head), &self.ring.space_sleepers, SHM_WAKE_ALL)

    cdef inline void drained_locked(self) noexcept:
        """Under the consumer lock, after taking: tidy up if the ring is now empty."""
        self.rewind_if_drained_locked()
        notify_quiet_if_drained_locked(self.ring, &self.notify, self.local_head)

    cdef object take_one(self, uint32_t *kind, shm_spill_ref_t *ref):
        """Take the oldest record; _TAKEN_BY_ANOTHER if another reader was first."""
        cdef shm_record_header_t *header
        self.begin_take()
        try:
            header = self.next_record_locked()
            if header == NULL:
                return _TAKEN_BY_ANOTHER
            raw = self.take_record_locked(header, kind, ref)
            self.drained_locked()
        finally:
            self.end_take()
        if self.ring.joinable:
            count_tasks(&self.tasks, 1, 0)
        if kind[0] == SHM_RECORD_SPILL:
            self.spill.hold_slot(ref.slot)
        return raw

    cdef list take_many(self, Py_ssize_t limit):
        cdef shm_record_header_t *header
        cdef uint32_t kind = 0
        cdef shm_spill_ref_t ref
        cdef list messages = []
        cdef list pending = []            # (index, kind, raw) of messages that still need decoding
        self.begin_take()
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
            self.drained_locked()
        finally:
            self.end_take()
        if messages and self.ring.joinable:
            count_tasks(&self.tasks, len(messages), 0)
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
        if kind == SHM_RECORD_PICKLE or kind == SHM_RECORD_RAW:
            return raw if as_bytes else _loads(raw)
        if kind == SHM_RECORD_BUFFERS:
            return decode_layout(raw, PyByteArray_AS_STRING(raw), len(raw), as_bytes)
        if kind == SHM_RECORD_SPILL:
            return self.spill.receive(ref, as_bytes)
        return pickled_bytes(raw) if as_bytes else raw

    # -- counts -------------------------------------------------------------------------------

    cdef uint64_t qsize(self) noexcept:
        """Messages in the ring now (approximate while others put and get)."""
        cdef uint64_t gets = shm_load_u64(&self.ring.gets)
        cdef uint64_t puts = shm_load_u64(&self.ring.puts)
        return puts - gets if puts > gets else 0


cdef inline bint needs_finishing(uint32_t kind) noexcept:
    return (kind == SHM_RECORD_PICKLE or kind == SHM_RECORD_BUFFERS or kind == SHM_RECORD_SPILL
            or kind == SHM_RECORD_RAW)
