/* atomics.h: every access to a word shared between processes goes through here.
 *
 * Why C: Cython has no spelling for memory orders, and these words are an ABI between processes
 * running on different cores, so each access names its order explicitly. Acquire on the load that
 * takes ownership, release on the store that gives it up; seq_cst only where a store must be seen
 * before a later load of another word (the "sleepers" handshake in wait.pyx). */
#ifndef SHMPROC_ATOMICS_H
#define SHMPROC_ATOMICS_H
#include <stdint.h>

#define SHM_ATOMIC_OPS(suffix, type)                                                                \
    static inline type shm_load_##suffix(type *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); } \
    static inline type shm_load_relaxed_##suffix(type *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); } \
    static inline void shm_store_##suffix(type *p, type v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); } \
    static inline void shm_store_relaxed_##suffix(type *p, type v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); } \
    static inline type shm_exchange_##suffix(type *p, type v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); } \
    static inline type shm_fetch_add_##suffix(type *p, type v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); } \
    static inline type shm_fetch_sub_##suffix(type *p, type v) { return __atomic_fetch_sub(p, v, __ATOMIC_ACQ_REL); } \
    static inline type shm_fetch_or_##suffix(type *p, type v) { return __atomic_fetch_or(p, v, __ATOMIC_ACQ_REL); } \
    /* On failure *expected receives the current value, as in C11. */                           \
    static inline int shm_cas_##suffix(type *p, type *expected, type desired) {                   \
        return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE); \
    }

SHM_ATOMIC_OPS(i8, int8_t)
SHM_ATOMIC_OPS(u8, uint8_t)
SHM_ATOMIC_OPS(i16, int16_t)
SHM_ATOMIC_OPS(u16, uint16_t)
SHM_ATOMIC_OPS(i32, int32_t)
SHM_ATOMIC_OPS(u32, uint32_t)
SHM_ATOMIC_OPS(i64, int64_t)
SHM_ATOMIC_OPS(u64, uint64_t)

/* A full fence: orders a store to one word before a load of another (Dekker-style handshake). */
static inline void shm_fence_seq_cst(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* Tell the core we are spinning: frees pipeline resources for the sibling hyper-thread. */
static inline void shm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}
#endif
