# The Linux system interface shmproc uses beyond libc's declarations in Cython's own pxds.
from posix.types cimport off_t

cdef extern from "<fcntl.h>" nogil:
    const int O_TMPFILE
    int fallocate(int fd, int mode, off_t offset, off_t length)

cdef extern from "<linux/falloc.h>" nogil:
    const int FALLOC_FL_KEEP_SIZE
    const int FALLOC_FL_PUNCH_HOLE

cdef extern from "<sys/mman.h>" nogil:
    int memfd_create(const char *name, unsigned int flags)
    const unsigned int MFD_CLOEXEC

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
