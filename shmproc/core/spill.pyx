# spill: where a message too large for its ring goes (docs/queues.md).
#
# A message larger than a quarter of its ring is written into a range of a second file, the channel's
# spill file, and the ring carries only (slot, generation, length). The spill file is sparse and
# unnamed like a segment, and every process using the channel holds it open, so a message outlives
# the process that sent it: a child may put a 1 GB array and exit before the parent gets it.
#
# A new range is filled with pwritev straight from the message's buffers: tmpfs then allocates each
# page as it copies into it, with no page fault and no zeroing (64 MB: ~25 ms here, against ~45 ms
# for fallocate + a populated mapping + memcpy), and a full /dev/shm is ENOSPC, never SIGBUS. Ranges
# are then recycled, not remapped: a freed range keeps its pages and every process keeps its mapping
# of it, so the next large message of a similar size is copied into warm memory with no page faults
# (64 MB: ~5.5 ms). Every page of a range that has been written is allocated, so a copy into it
# cannot SIGBUS. Free ranges beyond SPILL_CACHE_BYTES are punched out of the file. The receiver gets
# its out-of-band buffers as views of the range (a numpy array comes back writable, no copy); the
# range is freed when the last view dies.
#
# Slot states and who may change them are in ring.h and docs/internals/ring.md.


cdef uint64_t SPILL_CACHE_BYTES = 256 << 20
cdef bytes SPILL_FILE_MAGIC = b"shmspil1"

# id -> SpillFile: one mapping cache per channel per process, however many ring objects share it.
_spill_files = _weakref.WeakValueDictionary()


cdef int write_pieces(int fd, uint64_t *position, piece_list_t *pieces) noexcept nogil:
    """pwritev the pieces at *position, resuming after short writes; 0, or the errno that stopped
    it. *position and pieces are advanced past what was written, so a call after freeing space
    resumes where this one stopped."""
    cdef ssize_t written
    while True:
        while pieces.count > 0 and pieces.pieces[0].iov_len == 0:
            pieces.pieces += 1
            pieces.count -= 1
        if pieces.count == 0:
            return 0
        written = pwritev(fd, pieces.pieces, min(pieces.count, IOV_MAX), <off_t>position[0])
        if written < 0:
            if cerrno.errno == EINTR:
                continue
            return cerrno.errno
        if written == 0:                # no byte and no error: only a full file system does that
            return cerrno.ENOSPC
        position[0] += <uint64_t>written
        while pieces.count > 0 and <size_t>written >= pieces.pieces[0].iov_len:
            written -= pieces.pieces[0].iov_len
            pieces.pieces += 1
            pieces.count -= 1
        if written:
            pieces.pieces[0].iov_base = <char *>pieces.pieces[0].iov_base + written
            pieces.pieces[0].iov_len -= written


cdef class SpillMapping:
    """This process's mapping of one slot's range, at one generation."""

    def __dealloc__(self):
        if self.address != NULL:
            munmap(self.address, self.size)


cdef class SpillLease:
    """A received message's hold on its slot: exports the range's bytes (writable) and frees the
    slot when the last view of them is gone, in the process that took it."""

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        PyBuffer_FillInfo(buffer, self, self.mapping.address, <Py_ssize_t>self.length, 0, flags)

    def __releasebuffer__(self, Py_buffer *buffer):
        pass

    def __dealloc__(self):
        if self.spill is not None and self.holder == shm_current_pid():
            self.spill.release_slot(self.slot)


cdef class SpillFile:

    def __cinit__(self):
        self.fd = -1
        self.mappings = {}

    def __dealloc__(self):
        if self.fd >= 0:
            close(self.fd)

    @staticmethod
    cdef SpillFile create(Segment segment, shm_spill_table_t *table):
        cdef SpillFile spill = SpillFile.__new__(SpillFile)
        spill.segment, spill.table = segment, table
        spill.fd = _open_unnamed(shm_directory())
        spill.id = _os.urandom(16)
        _os.pwrite(spill.fd, SPILL_FILE_MAGIC + spill.id, 0)
        table.next_offset = SHM_SPILL_GRANULE     # the first granule holds the file's header
        _spill_files[spill.id] = spill
        return spill

    @staticmethod
    cdef SpillFile attach(object handle, Segment segment, shm_spill_table_t *table):
        id, reference = handle
        cdef SpillFile spill = _spill_files.get(id)
        if spill is not None:
            drop_reference(reference)
            return spill
        spill = SpillFile.__new__(SpillFile)
        spill.segment, spill.table, spill.id = segment, table, id
        spill.fd = open_peer_fd(reference, _os.O_RDWR, "a queue's spill file", SPILL_FILE_MAGIC + id)
        _spill_files[id] = spill
        return spill

    def handle(self):
        """What another process needs to attach this file: (id, descriptor reference)."""
        return (self.id, fd_reference(self.fd, is_spawning()))

    cdef SpillMapping mapping(self, uint32_t slot, bint populate):
        """This process's mapping of the slot's current range (cached while its generation holds).
        A writer populates it (it is about to touch every page; one call beats a fault per page);
        a reader maps it lazily and pays only for the pages it reads."""
        cdef shm_spill_slot_t *entry = &self.table.slot[slot]
        cdef uint32_t generation = shm_load_u32(&entry.generation)
        cdef SpillMapping mapping = self.mappings.get(slot)
        if mapping is not None and mapping.generation == generation:
            if populate and not mapping.populated:
                # A reader's lazy mapping (this process took a message from the range before):
                # fill its page tables in one call rather than take a write fault per page (64 MB:
                # ~7 ms against ~23 ms). Every page of a written range exists, so nothing is
                # allocated. Without the call (before Linux 5.14) the copy faults the pages in.
                with nogil:
                    madvise(mapping.address, mapping.size, MADV_POPULATE_READ)
                mapping.populated = True
            return mapping
        mapping = SpillMapping.__new__(SpillMapping)
        mapping.size, mapping.generation, mapping.populated = entry.size, generation, populate
        cdef int flags = MAP_SHARED | (MAP_POPULATE if populate else 0)
        cdef void *address = mmap(NULL, mapping.size, PROT_READ | PROT_WRITE, flags, self.fd,
                                  <off_t>entry.offset)
        if address == MAP_FAILED:
            raise shm_os_error(cerrno.errno, f"map a {mapping.size}-byte spill range")
        mapping.address = <char *>address
        self.mappings[slot] = mapping
        return mapping

    cdef int write_message(self, encoded_t *item, object owner, bint block,
                           int64_t deadline) except -2:
        """Lay item out in a slot's range and fill item.spill; the slot (held by this process until
        the producer queues it), or -1 if none became free before the deadline.

        How the bytes get there depends on the range (figures for 64 MB, docs/internals/ring.md):
        a fresh range is written with pwritev from the message's own buffers (no fault, no zeroing,
        ENOSPC instead of SIGBUS); a warm range is copied into through this process's mapping,
        made (and populated with one call) if this process has none of it yet. Either way the
        payload is copied once."""
        cdef uint64_t length = encoded_layout_size(item)
        cdef bint fresh = False
        cdef int slot = self.acquire_slot(length, block, deadline, &fresh)
        if slot < 0:
            return -1
        cdef SpillMapping mapping
        if fresh:
            self.fill_fresh_range(slot, item, owner, length)      # gives the slot back if it fails
        else:
            try:
                mapping = self.mapping(slot, True)
                write_encoded_layout(mapping.address, item, owner)
            except BaseException:
                self.release_slot(slot)
                raise
        item.spill.slot = slot
        item.spill.generation = shm_load_u32(&self.table.slot[slot].generation)
        item.spill.length = length
        return slot

    cdef int fill_fresh_range(self, int slot, encoded_t *item, object owner,
                              uint64_t length) except -1:
        """Write item's layout into the slot's new range, then allocate the rest of the range, so
        that the whole range has pages: a later message reusing it is copied in through a mapping,
        and a store into a hole would SIGBUS on a full /dev/shm. On ENOSPC the warm ranges kept for
        reuse are given back and the write resumes; if it still fails, the range is punched out,
        the slot is left EMPTY and OSError is raised."""
        cdef shm_spill_slot_t *entry = &self.table.slot[slot]
        cdef piece_list_t pieces
        cdef uint64_t position = entry.offset
        cdef uint64_t end = entry.offset + length, range_end = entry.offset + entry.size
        cdef int err = 0
        try:
            keep_alive = encoded_layout_pieces(item, owner, &pieces)
            for attempt in range(2):
                with nogil:
                    err = write_pieces(self.fd, &position, &pieces)
                    if err == 0 and range_end > end:
                        if fallocate(self.fd, 0, <off_t>end, <off_t>(range_end - end)) != 0:
                            err = cerrno.errno
                if err == 0:
                    return 0
                if attempt or (err != _errno.ENOSPC and err != _errno.ENOMEM):
                    break
                self.punch_cached_ranges()
        except BaseException:
            self.abandon_slot(slot)
            raise
        self.abandon_slot(slot)
        raise shm_os_error(err, f"write a {length}-byte message to a queue's spill file")

    cdef int acquire_slot(self, uint64_t size, bint block, int64_t deadline,
                          bint *fresh) except -2:
        """A slot whose range holds at least size bytes, now held by this process; -1 if none
        became free before the deadline (or at once, when not blocking). *fresh tells whether its
        range is new (no pages yet) or warm (every page allocated)."""
        cdef shm_spill_table_t *table = self.table
        cdef uint32_t observed, dead_owner = 0
        cdef int slot
        cdef WaitResult result
        cdef bint spin = True
        while True:
            observed = shm_load_u32(&table.released)
            if not lock_acquire(&table.lock, deadline, &dead_owner):
                return -1
            try:
                slot = self.claim_locked(size, fresh)
            finally:
                lock_release(&table.lock)
            if slot >= 0 or not block:
                return slot
            with nogil:
                result = wait_while_equal(&table.released, observed, &table.sleepers, deadline, spin)
            spin = False
            if after_wait(result):
                return -1

    cdef int claim_locked(self, uint64_t size, bint *fresh) except -2:
        cdef shm_spill_table_t *table = self.table
        cdef uint32_t me = SHM_SPILL_HELD | shm_current_pid()
        cdef int best = -1, empty = -1, evictable = -1, i
        cdef shm_spill_slot_t *entry
        for i in range(SHM_SPILL_SLOTS):
            entry = &table.slot[i]
            if entry.state == SHM_SPILL_FREE:
                if entry.size >= size and entry.size <= size + size // 4 + SHM_SPILL_GRANULE:
                    if best < 0 or entry.size < table.slot[best].size:
                        best = i
                elif evictable < 0 or entry.size > table.slot[evictable].size:
                    evictable = i
            elif entry.state == SHM_SPILL_EMPTY and empty < 0:
                empty = i
        if best >= 0:
            shm_store_u32(&table.slot[best].state, me)
            fresh[0] = False
            return best
        if empty < 0 and evictable >= 0:
            self.punch_locked(evictable)
            empty = evictable
        if empty < 0:
            empty = self.recover_dead_holder_locked()
            if empty < 0:
                return -1
        self.new_range_locked(empty, size)
        shm_store_u32(&table.slot[empty].state, me)
        fresh[0] = True
        self.trim_cache_locked()
        return empty

    cdef int recover_dead_holder_locked(self) except -2:
        """A slot held by a process that died (a producer killed while writing it, a consumer killed
        while reading it) is reusable: no ring record refers to a held slot. Its range is punched
        out (the slot comes back EMPTY), not kept warm: a producer killed inside pwritev leaves a
        range with holes, and a later copy into a hole would SIGBUS on a full /dev/shm."""
        cdef shm_spill_slot_t *entry
        cdef uint32_t state
        for i in range(SHM_SPILL_SLOTS):
            entry = &self.table.slot[i]
            state = shm_load_u32(&entry.state)
            if state & SHM_SPILL_HELD and not shm_pid_alive(state & ~SHM_SPILL_HELD):
                self.punch_locked(i)
                return i
        return -1

    cdef int new_range_locked(self, int slot, uint64_t size) except -1:
        """Describe a new range for the slot, past every range so far. No page is allocated here:
        the producer's pwritev does that outside the lock (fill_fresh_range)."""
        cdef shm_spill_slot_t *entry = &self.table.slot[slot]
        cdef uint64_t rounded = align_up(size, SHM_SPILL_GRANULE)
        cdef uint64_t offset = self.table.next_offset
        self.table.next_offset = offset + rounded
        # generation first: a process's cached mapping of the old range must stop matching before
        # the new range is described.
        shm_fetch_add_u32(&entry.generation, 1)
        entry.offset, entry.size = offset, rounded
        return 0

    cdef int punch_cached_ranges(self) except -1:
        """/dev/shm is full: give back the free ranges kept warm for reuse."""
        cdef uint32_t dead_owner = 0
        lock_acquire(&self.table.lock, NO_DEADLINE, &dead_owner)
        try:
            for i in range(SHM_SPILL_SLOTS):
                if self.table.slot[i].state == SHM_SPILL_FREE:
                    self.punch_locked(i)
        finally:
            lock_release(&self.table.lock)
        return 0

    cdef int abandon_slot(self, int slot) except -1:
        """A slot whose fresh range could not be written (this process holds it): punch the range
        out (it may have holes, see fill_fresh_range) and leave the slot EMPTY for anyone."""
        cdef uint32_t dead_owner = 0
        lock_acquire(&self.table.lock, NO_DEADLINE, &dead_owner)
        try:
            self.punch_locked(slot)
        finally:
            lock_release(&self.table.lock)
        shm_fetch_add_u32(&self.table.released, 1)
        wake_sleepers(&self.table.released, &self.table.sleepers, SHM_WAKE_ALL)
        return 0

    cdef int punch_locked(self, int slot) except -1:
        cdef shm_spill_slot_t *entry = &self.table.slot[slot]
        shm_store_u32(&entry.state, SHM_SPILL_EMPTY)
        shm_fetch_add_u32(&entry.generation, 1)
        if entry.size:
            fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, <off_t>entry.offset,
                      <off_t>entry.size)
        entry.size = 0
        self.mappings.pop(slot, None)
        return 0

    cdef int trim_cache_locked(self) except -1:
        cdef uint64_t cached = 0
        cdef int i
        for i in range(SHM_SPILL_SLOTS):
            if self.table.slot[i].state == SHM_SPILL_FREE:
                cached += self.table.slot[i].size
        for i in range(SHM_SPILL_SLOTS):
            if cached <= SPILL_CACHE_BYTES:
                break
            if self.table.slot[i].state == SHM_SPILL_FREE:
                cached -= self.table.slot[i].size
                self.punch_locked(i)
        return 0

    cdef inline void queue_slot(self, uint32_t slot) noexcept:
        """Producer, under the ring's producer lock just before publishing the record."""
        shm_store_u32(&self.table.slot[slot].state, SHM_SPILL_QUEUED)

    cdef inline void hold_slot(self, uint32_t slot) noexcept:
        """Consumer, after the record that names the slot has been consumed."""
        shm_store_u32(&self.table.slot[slot].state, SHM_SPILL_HELD | shm_current_pid())

    cdef void release_slot(self, uint32_t slot) noexcept:
        shm_store_u32(&self.table.slot[slot].state, SHM_SPILL_FREE)
        shm_fetch_add_u32(&self.table.released, 1)
        wake_sleepers(&self.table.released, &self.table.sleepers, SHM_WAKE_ALL)

    cdef bint under_pressure(self) noexcept:
        """More than half the slots are taken: a receiver should copy out and free its slot at
        once rather than pin it for as long as its arrays live."""
        cdef int busy = 0
        for i in range(SHM_SPILL_SLOTS):
            if shm_load_relaxed_u32(&self.table.slot[i].state) > SHM_SPILL_FREE:
                busy += 1
        return busy > SHM_SPILL_SLOTS // 2

    cdef object receive(self, const shm_spill_ref_t *ref, bint as_bytes):
        """The message a consumed SPILL record names (this process already holds the slot)."""
        if ref.slot >= <uint32_t>SHM_SPILL_SLOTS:
            raise RuntimeError("corrupt message in a shmproc ring (no such spill slot)")
        # The lease exists before any check can fail, so the slot is freed whatever happens.
        cdef SpillLease lease = SpillLease.__new__(SpillLease)
        lease.spill, lease.slot, lease.holder = self, ref.slot, shm_current_pid()
        if shm_load_u32(&self.table.slot[ref.slot].generation) != ref.generation:
            raise RuntimeError("corrupt message in a shmproc ring (stale spill reference)")
        lease.mapping = self.mapping(ref.slot, False)
        lease.length = ref.length
        if ref.length > lease.mapping.size:
            raise RuntimeError("corrupt message in a shmproc ring (spill reference too long)")
        if self.under_pressure():
            private = PyByteArray_FromStringAndSize(lease.mapping.address, ref.length)
            lease = None                # frees the slot now
            return decode_layout(private, PyByteArray_AS_STRING(private), ref.length, as_bytes)
        return decode_layout(lease, lease.mapping.address, ref.length, as_bytes)
