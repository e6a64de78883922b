/* layout.h: the structures that live in shared memory.
 *
 * These bytes are an ABI between processes (possibly built from different commits, if a user mixes
 * installs), so every field has a fixed width and the sizes are checked at compile time. Each
 * primitive is allocated on its own cache line (core/heap.pyx rounds blocks up to 64 bytes) so that two
 * unrelated locks never share a line. */
#ifndef SHMPROC_LAYOUT_H
#define SHMPROC_LAYOUT_H
#include <assert.h>
#include <stdint.h>

#define SHM_CACHE_LINE 64

/* Every segment starts with this header, so a process attaching by (pid, fd) can check it got the
 * segment it was promised and not a recycled descriptor. */
#define SHM_SEGMENT_MAGIC 0x31636f7270686d73ull /* "shmproc1" little-endian */
#define SHM_SEGMENT_HEADER 64
typedef struct {
    uint64_t magic;
    uint8_t id[16];
    uint64_t size;
    uint8_t _pad[SHM_SEGMENT_HEADER - 32];
} shm_segment_header_t;
static_assert(sizeof(shm_segment_header_t) == SHM_SEGMENT_HEADER, "segment header is one cache line");

/* Lock and RLock. The owner's pid lives in the state word itself, so that "locked" and "by whom"
 * change in one atomic step: a process killed right after acquiring is still identifiable. */
#define SHM_LOCK_PID_MASK 0x3fffffffu   /* Linux pids are < 2**22 */
#define SHM_LOCK_SLEEPERS 0x80000000u   /* someone may be asleep: release must wake */
typedef struct {
    uint32_t state;        /* 0 free; else owner pid | SHM_LOCK_SLEEPERS */
    uint32_t depth;        /* RLock recursion depth; written by the owner only */
    uint64_t owner_thread; /* owner's thread ident; RLock ownership and repr */
} shm_lock_t;
static_assert(sizeof(shm_lock_t) == 16, "shm_lock_t layout");

typedef struct {
    uint32_t value;    /* futex word: tokens available */
    uint32_t sleepers; /* threads inside futex_wait on value */
    uint32_t maxvalue; /* BoundedSemaphore's bound; UINT32_MAX when unbounded */
    uint32_t _pad;
} shm_semaphore_t;
static_assert(sizeof(shm_semaphore_t) == 16, "shm_semaphore_t layout");

typedef struct {
    uint32_t flag;     /* futex word: 0 clear, 1 set */
    uint32_t sleepers;
} shm_event_t;
static_assert(sizeof(shm_event_t) == 8, "shm_event_t layout");

/* Condition variable. waiters and tokens share one 64-bit word so that "a waiter takes a
 * notification" is a single compare-and-swap; seq tells a waiter whether a notify happened after it
 * registered, so a late waiter cannot steal a notification meant for an earlier one. */
typedef struct {
    uint32_t seq;      /* futex word: +1 per notify */
    uint32_t sleepers;
    uint64_t tickets;  /* waiters << 32 | tokens; tokens <= waiters */
} shm_condition_t;
static_assert(sizeof(shm_condition_t) == 16, "shm_condition_t layout");

/* Barrier: threading.Barrier's state machine, shared. */
enum { SHM_BARRIER_FILLING = 0, SHM_BARRIER_DRAINING = 1, SHM_BARRIER_RESETTING = -1, SHM_BARRIER_BROKEN = -2 };
typedef struct {
    uint32_t pid;      /* a process that has called wait() and not exited cleanly; 0: free slot */
    uint32_t arrived;  /* how many of its threads are counted in count right now */
} shm_barrier_party_t;
typedef struct {
    shm_lock_t lock;   /* guards the fields below; its robustness covers a party dying inside */
    uint32_t gen;      /* futex word: +1 on every change that waiters wait for */
    uint32_t sleepers;
    int32_t state;
    uint32_t count;
    uint32_t parties;
    uint32_t nslots;
    shm_barrier_party_t slot[];
} shm_barrier_t;
static_assert(sizeof(shm_barrier_t) == 40, "shm_barrier_t layout");
#endif
