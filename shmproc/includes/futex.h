/* futex.h: the two futex calls shmproc makes, on words in MAP_SHARED memory.
 *
 * Why C: the futex has no libc wrapper. The calls are the shared (not FUTEX_PRIVATE) flavour
 * because waiter and waker are usually different processes. Return values are errno codes so
 * that Cython code running without the GIL can branch on them (0, EAGAIN, ETIMEDOUT, EINTR). */
#ifndef SHMPROC_FUTEX_H
#define SHMPROC_FUTEX_H
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleep while *word == expected, for at most timeout_ns (relative; < 0 means no limit). */
static inline int shm_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0) == 0)
        return 0;
    return errno;
}

/* Wake up to n sleepers on word; returns how many were woken. */
static inline int shm_futex_wake(uint32_t *word, int n) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? 0 : (int)r;
}

#define SHM_WAKE_ALL INT_MAX

static inline int64_t shm_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#endif
