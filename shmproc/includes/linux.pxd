# The Linux system interface shmproc uses beyond libc's declarations in Cython's own pxds.
from posix.types cimport off_t

cdef extern from "<fcntl.h>" nogil:
    const int O_TMPFILE
    int fallocate(int fd, int mode, off_t offset, off_t length)

cdef extern from "<linux/falloc.h>" nogil:
    const int FALLOC_FL_KEEP_SIZE
    const int FALLOC_FL_PUNCH_HOLE

cdef extern from "<sys/uio.h>" nogil:
    # Fresh spill ranges are written with pwritev (spill.pyx): the kernel allocates each page as it
    # fills it, with no page fault and no zeroing, and returns ENOSPC where a store would SIGBUS.
    struct iovec:
        void *iov_base
        size_t iov_len
    ssize_t pwritev(int fd, const iovec *iov, int iovcnt, off_t offset)

cdef extern from "<limits.h>" nogil:
    const int IOV_MAX

cdef extern from "<sys/mman.h>" nogil:
    int memfd_create(const char *name, unsigned int flags)
    const unsigned int MFD_CLOEXEC
    int madvise(void *address, size_t length, int advice)

cdef extern from * nogil:
    # Linux 5.14; older C headers lack the name, older kernels answer EINVAL (callers go on without).
    """
    #include <sys/mman.h>
    #ifndef MADV_POPULATE_READ
    #define MADV_POPULATE_READ 22
    #endif
    """
    const int MADV_POPULATE_READ

cdef extern from "<sys/statvfs.h>" nogil:
    ctypedef unsigned long fsblkcnt_t
    cdef struct statvfs_t "statvfs":
        unsigned long f_frsize
        fsblkcnt_t f_bavail
    int statvfs(const char *path, statvfs_t *buf)

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "<sys/prctl.h>" nogil:
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)
    const int PR_SET_PDEATHSIG

cdef extern from "<poll.h>" nogil:
    # A Connection's EOF and closed-reader checks look at its notify pipe end (notify.pyx).
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    const short POLLIN
    const short POLLHUP
    const short POLLERR

cdef extern from "<sys/vfs.h>" nogil:
    # Whether a segment's pages must be reserved when it is made (segment.pyx): its filesystem's
    # kind and size limit (a tmpfs without a limit reports f_blocks == 0).
    cdef struct statfs_t "statfs":
        long f_type
        long f_bsize
        unsigned long f_blocks
    int fstatfs(int fd, statfs_t *buf)

cdef extern from "<linux/magic.h>" nogil:
    const long TMPFS_MAGIC

cdef extern from "<sys/sysinfo.h>" nogil:
    cdef struct sysinfo_t "sysinfo":
        unsigned long totalram
        unsigned long totalswap
        unsigned int mem_unit
    int sysinfo(sysinfo_t *info)
