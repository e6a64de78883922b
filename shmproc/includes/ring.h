/* ring.h: the shared layout of a message channel (Queue, Pipe): its rings and its spill table.
 *
 * These bytes are an ABI between processes, so every field has a fixed width and the sizes are
 * checked at compile time. The invariants each field keeps are written down in
 * docs/internals/ring.md; the code that keeps them is shmproc/core/ring.pyx.
 *
 * A channel is one segment:   [segment header][channel header][spill table][ring 0][ring 1][task holders]
 *                             [data of ring 0 (capacity bytes)][data of ring 1]
 * plus a second, sparse file (the spill file) holding messages too large for a ring.
 *
 * A queue's ring is *growable*: its data area is a large sparse range (capacity) of which only the
 * first `window` bytes are in use while readers keep up; writers go on past the window while
 * readers lag, allocating pages as they go (`reserved`), wrap back to the start as soon as readers
 * have made room there, and leap past a reader left behind in the previous lap (`lap_end`). A
 * Pipe's rings are not growable (window == capacity, all reserved). */
#ifndef SHMPROC_RING_H
#define SHMPROC_RING_H
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include "layout.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* Consumers sleep on the low half of the 64-bit tail (and producers on the head's): a futex word
 * is 32 bits, and on a little-endian machine the low half sits at the index's own address. */
#error "shmproc's ring needs a little-endian machine"
#endif

#define SHM_CHANNEL_MAGIC 0x356c656e6e616863ull   /* "channel5" little-endian */
#define SHM_RING_MAX 2

/* One direction of messages. Each group of fields is written by one side only and sits on its
 * own cache line, so producers and consumers never write the same line.
 *
 * A side's lock holder publishes its work by storing an index and a count: tail and puts, or head
 * and gets. A holder killed between those two stores would leave them disagreeing for good, so it
 * first writes both values to the side's redo slot and raises its flag; whoever takes the lock over
 * from a dead holder stores them again if the flag is still up. */
typedef struct {
    uint64_t index;           /* tail or head being stored */
    uint64_t count;           /* puts or gets being stored */
    uint32_t active;          /* 1 from before the two stores until after them */
    uint32_t _pad;
} shm_redo_t;

typedef struct {
    /* Line 0: written once by the creator. */
    uint64_t capacity;        /* bytes of the data area (mapped, mostly sparse): a power of two */
    uint64_t window;          /* writers wrap here when readers have made room: a power of two */
    uint64_t data_offset;     /* of the data area, from the segment's base */
    uint64_t maxsize;         /* messages; 0: only the byte capacity bounds the ring */
    uint32_t joinable;        /* every message is a task that task_done() finishes (JoinableQueue) */
    uint8_t _pad0[SHM_CACHE_LINE - 36];

    /* Line 1: producers. The lock serialises writers; tail publishes (release) what they wrote. */
    shm_lock_t producer_lock;
    uint64_t tail;            /* bytes ever written; records below it are complete */
    uint64_t puts;            /* messages ever written (a JoinableQueue's tasks ever added) */
    uint32_t data_sleepers;   /* consumers asleep on the low half of tail */
    uint32_t _pad1;
    shm_redo_t producer_redo;

    /* Line 2: consumers. The lock serialises readers; head frees (release) what they read. */
    shm_lock_t consumer_lock;
    uint64_t head;            /* bytes ever read; head <= tail */
    uint64_t gets;            /* messages ever read; gets <= puts */
    uint32_t space_sleepers;  /* producers asleep on the low half of head */
    uint32_t _pad2;
    shm_redo_t consumer_redo;

    /* Line 3: producers, rarely written (growth). */
    uint64_t reserved;        /* bytes at the start of the data area whose pages are allocated */
    uint64_t lap_end;         /* index of the SKIP header that ended the last lap a writer left */
    uint8_t _pad3[SHM_CACHE_LINE - 16];

    /* Line 4: rarely written. */
    uint64_t tasks_done;      /* JoinableQueue: task_done() calls; join() sleeps on its low half */
    uint32_t join_sleepers;
    uint32_t notify_mode;     /* SHM_NOTIFY_* bits; 0: no publish touches the notify descriptor */
    uint32_t notify_signaled; /* 1: a notify byte is in the reader's descriptor (or about to be) */
    uint8_t _pad4[SHM_CACHE_LINE - 20];
} shm_ring_t;
/* A ring's notify_mode (core/notify.pyx). */
enum {
    SHM_NOTIFY_ENABLED = 1,   /* someone asked for fileno(): keep the reader's descriptor readable */
    SHM_NOTIFY_AFTER_FOREIGN = 2, /* a duplex Pipe's socket may have been given other bytes (a
                                   * passed descriptor): the next publish sends a byte behind them */
    SHM_NOTIFY_MIXED = 4,     /* the reader's descriptor may hold other bytes, or more notify bytes
                               * than flags: readers count before they consume (never cleared) */
};
static_assert(sizeof(shm_ring_t) == 5 * SHM_CACHE_LINE, "shm_ring_t is five cache lines");
static_assert(offsetof(shm_ring_t, producer_lock) == SHM_CACHE_LINE, "producers' line");
static_assert(offsetof(shm_ring_t, consumer_lock) == 2 * SHM_CACHE_LINE, "consumers' line");
static_assert(offsetof(shm_ring_t, reserved) == 3 * SHM_CACHE_LINE, "producers' growth line");
static_assert(offsetof(shm_ring_t, tasks_done) == 4 * SHM_CACHE_LINE, "cold line");
static_assert(offsetof(shm_ring_t, tail) % 8 == 0 && offsetof(shm_ring_t, head) % 8 == 0 &&
              offsetof(shm_ring_t, tasks_done) % 8 == 0,
              "indices are naturally aligned (atomic, and their low half is a futex word)");

/* Every record in a ring's data area starts with this, on an 8-byte boundary. A record never wraps:
 * a writer that goes back to the start of the data area (at the window, or at the end) first
 * writes a SKIP header standing for everything up to the end of the data area; a writer of a
 * growable ring that leaps past a lagging reader's lap writes one standing for that lap's rest. */
typedef struct {
    uint32_t length;          /* payload bytes after this header (the record is padded to 8) */
    uint32_t kind;            /* SHM_RECORD_* */
} shm_record_header_t;
static_assert(sizeof(shm_record_header_t) == 8, "record header");

enum {
    SHM_RECORD_SKIP = 0,      /* no message: the next record is length * 8 bytes after this header */
    SHM_RECORD_PICKLE = 1,    /* a pickle stream */
    SHM_RECORD_BUFFERS = 2,   /* shm_buffers_t, then a pickle stream and its out-of-band buffers */
    SHM_RECORD_BYTES = 3,     /* an exact bytes object */
    SHM_RECORD_INT = 4,       /* an exact int that fits in int64 */
    SHM_RECORD_FLOAT = 5,     /* an exact float */
    SHM_RECORD_STR = 6,       /* an exact str, UTF-8 */
    SHM_RECORD_SPILL = 7,     /* shm_spill_ref_t: the message lives in a spill slot */
    SHM_RECORD_RAW = 8,       /* Connection.send_bytes: bytes that recv() unpickles */
};

/* How a pickle stream and its out-of-band buffers are laid out, inline or in a spill range: this
 * descriptor, nbuffers lengths, then (from data_start) the stream, then each buffer starting on an
 * SHM_BUFFER_ALIGN boundary relative to data_start. */
#define SHM_BUFFER_ALIGN 64
typedef struct {
    uint32_t nbuffers;
    uint32_t body_kind;       /* SHM_RECORD_PICKLE, SHM_RECORD_BUFFERS or SHM_RECORD_BYTES */
    uint64_t stream_length;
    uint64_t buffer_length[]; /* nbuffers of them */
} shm_buffers_t;
static_assert(sizeof(shm_buffers_t) == 16, "buffers descriptor");

/* A ring record that points at a spill slot, whose range holds the message as a layout
 * (shm_buffers_t, body_kind PICKLE, BUFFERS, BYTES or RAW). */
typedef struct {
    uint32_t slot;
    uint32_t generation;      /* the slot's generation when written: a stale reference is detected */
    uint64_t length;          /* bytes of the layout */
} shm_spill_ref_t;
static_assert(sizeof(shm_spill_ref_t) == 16, "spill reference");

/* Spill slots: ranges of the spill file that hold one large message each. Slot states: */
#define SHM_SPILL_EMPTY 0u         /* no range */
#define SHM_SPILL_FREE 1u          /* a range with warm pages, reusable */
#define SHM_SPILL_QUEUED 2u        /* a ring record refers to it; no process holds it */
#define SHM_SPILL_HELD 0x80000000u /* | pid: that process writes it (producer) or reads it (consumer) */
#define SHM_SPILL_SLOTS 256
#define SHM_SPILL_GRANULE (2u << 20)
typedef struct {
    uint64_t offset;          /* in the spill file; ranges are never reused once punched out */
    uint64_t size;
    uint32_t state;
    uint32_t generation;      /* +1 whenever offset/size change: processes' mapping caches check it */
    uint64_t _pad;
} shm_spill_slot_t;
static_assert(sizeof(shm_spill_slot_t) == 32, "spill slot");

typedef struct {
    shm_lock_t lock;          /* guards slot ranges and next_offset; robust to a dead holder */
    uint64_t next_offset;     /* bump pointer in the sparse spill file */
    uint32_t released;        /* futex word: +1 whenever a slot becomes free */
    uint32_t sleepers;
    uint8_t _pad[SHM_CACHE_LINE - 32];
    shm_spill_slot_t slot[SHM_SPILL_SLOTS];
} shm_spill_table_t;
static_assert(sizeof(shm_spill_table_t) == SHM_CACHE_LINE + 32 * SHM_SPILL_SLOTS, "spill table");

/* JoinableQueue: who holds unfinished tasks. A process that takes messages from a joinable ring
 * claims a slot and counts in it the tasks it took and the task_done() calls it made; only that
 * process writes them, after the ring's own counts. A join() that waits looks for dead processes
 * that took more than they finished: those tasks can never be done (core/tasks.pyx). */
#define SHM_TASK_HOLDERS 64
typedef struct {
    uint32_t pid;             /* 0: free; a dead pid stays until its tasks are accounted for */
    uint32_t _pad;
    uint64_t taken;           /* messages this process took */
    uint64_t done;            /* task_done() calls it made (for any process's tasks) */
    uint8_t _pad1[SHM_CACHE_LINE - 24];
} shm_task_holder_t;
static_assert(sizeof(shm_task_holder_t) == SHM_CACHE_LINE, "a task holder is one line");

typedef struct {
    uint64_t magic;
    uint32_t nrings;
    uint32_t _pad0;
    uint8_t spill_id[16];     /* the spill file's id: an attacher checks it got the right file */
    uint8_t _pad1[SHM_CACHE_LINE - 32];
    shm_spill_table_t spill;
    shm_ring_t ring[SHM_RING_MAX];
    shm_task_holder_t holder[SHM_TASK_HOLDERS];
} shm_channel_t;
static_assert(offsetof(shm_channel_t, spill) == SHM_CACHE_LINE, "channel header is one line");
static_assert(offsetof(shm_channel_t, ring) % SHM_CACHE_LINE == 0, "rings on their own lines");
#endif
