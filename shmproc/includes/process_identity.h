/* process_identity.h: who am I, and is that other process still alive?
 *
 * Why C: getpid() is a system call in current glibc (~50-100 ns), too slow for every lock acquire,
 * so the pid is cached and refreshed in the child by pthread_atfork. Liveness must treat a zombie
 * (killed but not yet reaped) as dead: kill(pid, 0) alone says it is alive. */
#ifndef SHMPROC_PROCESS_IDENTITY_H
#define SHMPROC_PROCESS_IDENTITY_H
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static uint32_t shm_cached_pid;

static void shm_refresh_pid(void) { shm_cached_pid = (uint32_t)getpid(); }

static inline int shm_identity_init(void) {
    shm_refresh_pid();
    return pthread_atfork(NULL, NULL, shm_refresh_pid);
}

static inline uint32_t shm_current_pid(void) { return shm_cached_pid; }
static inline uint64_t shm_current_thread(void) { return (uint64_t)pthread_self(); }

/* 1 if pid names a live (non-zombie) process, 0 if not. */
static inline int shm_pid_alive(uint32_t pid) {
    char path[64], buf[512];
    if (pid == 0) return 0;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 0;
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return errno == ENOENT ? 0 : 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may contain ')' so look for the last one. */
    char *close = strrchr(buf, ')');
    if (close == NULL || close[1] == '\0' || close[2] == '\0') return 1;
    return !(close[2] == 'Z' || close[2] == 'X');
}
#endif
