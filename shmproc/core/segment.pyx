# segment: create, map and attach shared-memory segments.
#
# A segment is an *unnamed* file on the shared-memory filesystem (O_TMPFILE in /dev/shm, or a memfd
# where O_TMPFILE is not supported). It never has a name in /dev/shm, so no process, however it dies,
# can leave it behind: the kernel frees it when the last descriptor and mapping are gone, that is when
# the last process of the tree that used it has exited. It is created mode 0600.
#
# The handle that crosses a process boundary is (id, size, descriptor reference); core/handles.pyx
# says how the descriptor travels and is opened (through the sender's /proc entry, or the keeper's
# copy once the sender is gone). The magic and id at the start of the segment's header prove that
# the descriptor opened was not recycled for something else in between.


# id -> Segment, for the segments this process has mapped: attaching the same segment twice maps it
# once. A forked child inherits the table together with the mappings it describes.
_mapped_segments = _weakref.WeakValueDictionary()

# What a segment's first bytes are: the magic, then the id (shm_segment_header_t).
cdef bytes SEGMENT_MAGIC_BYTES = int(SHM_SEGMENT_MAGIC).to_bytes(8, "little")


def shm_directory():
    """Where segments are created: $SHMPROC_SHM_DIR, else /dev/shm."""
    return _os.environ.get("SHMPROC_SHM_DIR", "/dev/shm")


cdef int _open_unnamed(str directory) except -1:
    cdef int fd
    try:
        return _os.open(directory, _os.O_RDWR | _os.O_CLOEXEC | O_TMPFILE, 0o600)
    except OSError as exc:
        if exc.errno not in (_errno.EOPNOTSUPP, _errno.EISDIR, _errno.EINVAL):
            raise
    # A filesystem without O_TMPFILE: fall back to an anonymous memfd, made private to the user.
    fd = memfd_create(b"shmproc", MFD_CLOEXEC)
    if fd < 0:
        raise shm_os_error(cerrno.errno, "create a shared-memory file (memfd_create)")
    _os.fchmod(fd, 0o600)
    return fd


cdef int _check_free(size_t size, str directory) except -1:
    """A request larger than the filesystem's free space is ENOSPC now, whatever is reserved."""
    cdef statvfs_t info
    if statvfs(directory.encode(), &info) == 0:
        free = <size_t>info.f_bavail * info.f_frsize
        if size > free:
            raise shm_os_error(ENOSPC, f"allocate {size} bytes ({free} free)")
    return 0


cdef int _reserve(int fd, size_t size) except -1:
    """Allocate the segment's pages now, so a full filesystem is an error here and never a SIGBUS
    on first touch later."""
    cdef int rc
    with nogil:
        rc = fallocate(fd, 0, 0, <off_t>size)
    if rc != 0:
        raise shm_os_error(cerrno.errno, f"allocate {size} bytes of shared memory")
    return 0


# (st_dev, f_fsid) -> whether that mount has quotas. A tmpfs's device number is reused by the
# next tmpfs mounted after it is gone; its fsid is random per mount (where the kernel gives one:
# those too old to give one are too old for tmpfs quotas).
cdef dict _quota_by_mount = {}


cdef bint _has_quota(int fd) except -1:
    device = _os.fstat(fd).st_dev
    key = (device, _os.fstatvfs(fd).f_fsid)
    found = _quota_by_mount.get(key)
    if found is None:
        numbers = f"{_os.major(device)}:{_os.minor(device)}"
        found = False
        try:
            with open("/proc/self/mountinfo") as mounts:
                for line in mounts:
                    fields = line.split(" ", 3)
                    if len(fields) > 2 and fields[2] == numbers:
                        found = "quota" in line
        except OSError:
            found = True
        _quota_by_mount[key] = found
    return found


cdef bint _strict_overcommit() except -1:
    """vm.overcommit_memory 2: each page a tmpfs file gets is charged against the commit limit
    when it is allocated, so a first touch can fail (a SIGBUS) however large the filesystem.
    Read every time (~4 us): it may be changed while we run."""
    try:
        fd = _os.open("/proc/sys/vm/overcommit_memory", _os.O_RDONLY | _os.O_CLOEXEC)
        try:
            mode = _os.read(fd, 8)
        finally:
            _os.close(fd)
    except OSError:
        return True
    return mode.strip() == b"2"


cdef bint _touch_may_fail(int fd) except -1:
    """Whether a first store into a page of this file could fail for want of room on its
    filesystem (a SIGBUS), so that its pages must be reserved when it is made. Not on a tmpfs that
    cannot fill up before the machine's memory does: one without a size limit (a memfd's), or with
    a limit of at least RAM + swap, and without quotas, while memory is overcommitted (the
    default). There a first touch can fail only as any memory can (the OOM killer, as for
    numpy's own arrays), and reserving would only allocate pages that may never be used, at
    ~1.5 us a page (docs/design.md, "Segments")."""
    cdef statfs_t fs
    cdef sysinfo_t memory
    if fstatfs(fd, &fs) != 0 or fs.f_type != TMPFS_MAGIC:
        return True
    if fs.f_blocks != 0:
        if sysinfo(&memory) != 0:
            return True
        if (<double>fs.f_blocks * fs.f_bsize
                < (<double>memory.totalram + memory.totalswap) * memory.mem_unit):
            return True
    return _strict_overcommit() or _has_quota(fd)


cdef class Segment:
    """One mapping of a shared-memory segment in this process. Unmapped when the last reference in
    this process goes away; the memory itself lives on while any process maps it."""

    def __cinit__(self):
        self.base = NULL
        self.fd = -1

    def __dealloc__(self):
        if self.base != NULL:
            munmap(self.base, self.size)
        if self.fd >= 0:
            close(self.fd)

    @staticmethod
    def create(size_t payload_size, reserved_payload=None, bint reserve_always=True):
        """A new segment with room for payload_size bytes after its header, of which the first
        reserved_payload (default: all) have their pages allocated now; the rest is sparse, for
        allocate_range() to fill on demand. reserve_always=False: reserve only where a first
        touch could otherwise SIGBUS (_touch_may_fail); elsewhere every page is allocated when
        first touched."""
        cdef Segment seg = Segment.__new__(Segment)
        if payload_size > (<size_t>1 << 48):
            raise ValueError(f"segment size {payload_size} is absurd")
        seg.size = SHM_SEGMENT_HEADER + payload_size
        cdef size_t reserved = seg.size
        if reserved_payload is not None and reserved_payload < payload_size:
            reserved = SHM_SEGMENT_HEADER + <size_t>reserved_payload
        directory = shm_directory()
        seg.fd = _open_unnamed(directory)
        _os.ftruncate(seg.fd, seg.size)
        _check_free(reserved, directory)
        if reserve_always or _touch_may_fail(seg.fd):
            _reserve(seg.fd, reserved)
        seg._map()
        seg.id = _os.urandom(16)
        cdef shm_segment_header_t *header = <shm_segment_header_t *>seg.base
        memcpy(header.id, <char *>seg.id, 16)
        header.size = seg.size
        header.magic = SHM_SEGMENT_MAGIC
        _mapped_segments[seg.id] = seg
        return seg

    @staticmethod
    def attach(bytes id, size_t size, object reference):
        """The segment a handle names, mapped in this process (once)."""
        cdef Segment seg = _mapped_segments.get(id)
        if seg is not None:
            drop_reference(reference)
            return seg
        seg = Segment.__new__(Segment)
        seg.size = size
        seg.fd = open_peer_fd(reference, _os.O_RDWR, "a shared-memory segment",
                              SEGMENT_MAGIC_BYTES + id)
        if _os.fstat(seg.fd).st_size != size:
            raise FileNotFoundError(_errno.ENOENT, "the segment behind a handle is not the one sent")
        seg._map()
        seg.id = id
        _mapped_segments[id] = seg
        return seg

    cdef int _map(self) except -1:
        cdef void *address = mmap(NULL, self.size, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd, 0)
        if address == MAP_FAILED:
            raise shm_os_error(cerrno.errno, f"map {self.size} bytes of shared memory")
        self.base = <char *>address
        return 0

    cdef int allocate_range(self, uint64_t offset, uint64_t length) except -1:
        """Allocate the pages of [offset, offset + length) of a sparse segment, so that touching
        them can never SIGBUS: a full filesystem is an OSError here instead."""
        cdef int rc
        with nogil:
            rc = fallocate(self.fd, 0, <off_t>offset, <off_t>length)
        if rc != 0:
            raise shm_os_error(cerrno.errno, f"grow shared memory by {length} bytes")
        return 0

    cdef void release_range(self, uint64_t offset, uint64_t length) noexcept nogil:
        """Give the pages of [offset, offset + length) back to the system (they read as zeros)."""
        fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, <off_t>offset, <off_t>length)

    def handle(self):
        """What another process needs to attach this segment: (id, size, descriptor reference)."""
        return (self.id, self.size, fd_reference(self.fd, is_spawning()))

    def __repr__(self):
        return f"<shmproc Segment {self.id.hex()[:12]} size={self.size} fd={self.fd}>"
