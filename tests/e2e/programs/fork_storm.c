/* Forks while other threads hammer malloc/free.
 * Usage: fork_storm FORKS THREADS [EXEC_PROGRAM]
 *   Without EXEC_PROGRAM each child allocates, checks and leaks a little
 *   (child_leak, from its main thread and from a thread it starts:
 *   child_thread_leak), then leaves with exit() (even children) or _exit() (odd
 *   ones); its exit status is a checksum the parent recomputes.
 *   With EXEC_PROGRAM, each child execs EXEC_PROGRAM with its index, and
 *   every other one is started with posix_spawn instead of fork+exec.
 * Prints one line per child and a summary; children print nothing
 * themselves (an exec'd program prints its own line). */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lw_check.h"

extern char** environ;

static atomic_int g_stop;
static atomic_long g_ops;

static void* hammer(void* arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  void* slot[32] = {0};
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    uint64_t r = lw_next(&rng);
    int s = (int)(r % 32);
    free(slot[s]);
    size_t n = 1 + (r >> 20) % ((r & 64) ? 100000 : 600);
    slot[s] = (r & 1) ? malloc(n) : calloc(1, n);
    LW_CHECK(slot[s]);
    memset(slot[s], (int)r, n < 64 ? n : 64);
    if ((r & 0x700) == 0) slot[s] = realloc(slot[s], n + 5000);
    atomic_fetch_add_explicit(&g_ops, 1, memory_order_relaxed);
  }
  for (int s = 0; s < 32; ++s) free(slot[s]);
  return NULL;
}

__attribute__((noinline)) void* child_leak(size_t n, uint64_t seed) {
  void* p = malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, seed);
  LW_ESCAPE(p);
  return p;
}

struct thread_leak {
  uint64_t seed;
};

/* A thread the child starts: the unwinder has no per-thread state for it
 * yet, and the parent's threads may have left the unwinder's locks in any
 * state at the fork. */
__attribute__((noinline)) static void* child_thread_leak(void* arg) {
  const struct thread_leak* t = arg;
  for (int k = 0; k < 4; ++k) child_leak(2000 + (size_t)k, t->seed + (uint64_t)k);
  return NULL;
}

/* The child's work; also run by the parent to know the expected status. */
static int child_work(int i, int leak) {
  uint64_t rng = 500 + (uint64_t)i, h = 0;
  void* keep[64];
  size_t sizes[64];
  uint64_t seeds[64];
  for (int k = 0; k < 64; ++k) {
    uint64_t r = lw_next(&rng);
    sizes[k] = 1 + r % 3000;
    seeds[k] = r;
    keep[k] = (k & 1) ? malloc(sizes[k]) : calloc(sizes[k], 1);
    LW_CHECK(keep[k]);
    lw_fill(keep[k], sizes[k], r);
  }
  for (int k = 0; k < 64; ++k) {
    LW_CHECK(lw_verify(keep[k], sizes[k], seeds[k]));
    h = lw_hash(h, keep[k], sizes[k]);
    free(keep[k]);
  }
  if (leak) {
    for (int k = 0; k < 4; ++k) child_leak(1000 + (size_t)k, h);
    struct thread_leak arg = {h};
    pthread_t t;
    LW_CHECK(pthread_create(&t, NULL, child_thread_leak, &arg) == 0);
    LW_CHECK(pthread_join(t, NULL) == 0);
  }
  return (int)(h % 200) + 1;
}

static int run_exec(const char* prog, int i) {
  char arg[16];
  snprintf(arg, sizeof arg, "%d", i);
  char* argv[] = {(char*)prog, arg, NULL};
  pid_t pid;
  if (i % 2 == 0) {
    pid = fork();
    LW_CHECK(pid >= 0);
    if (pid == 0) {
      execv(prog, argv);
      _exit(127);
    }
  } else {
    int rc = posix_spawn(&pid, prog, NULL, NULL, argv, environ);
    LW_CHECK(rc == 0);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) LW_CHECK(errno == EINTR);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

int main(int argc, char** argv) {
  LW_CHECK(argc >= 3);
  int forks = atoi(argv[1]), nthreads = atoi(argv[2]);
  const char* exec_prog = argc > 3 ? argv[3] : NULL;
  pthread_t th[64];
  LW_CHECK(nthreads <= 64);
  for (int t = 0; t < nthreads; ++t) LW_CHECK(pthread_create(&th[t], NULL, hammer, (void*)(uintptr_t)(t + 1)) == 0);
  /* Let the hammers get going before the first fork (bounded: they are running). */
  while (atomic_load(&g_ops) < 1000L * nthreads) sched_yield();
  int ok = 0;
  for (int i = 0; i < forks; ++i) {
    fflush(stdout);  /* children must not inherit buffered output */
    int status;
    if (exec_prog) {
      status = run_exec(exec_prog, i);
      printf("exec child %d exited %d\n", i, status);
      ok += status == 0;
      continue;
    }
    int expected = child_work(i, 0);
    pid_t pid = fork();
    LW_CHECK(pid >= 0);
    if (pid == 0) {
      int code = child_work(i, 1);
      if (i % 2 == 0) exit(code);
      _exit(code);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) LW_CHECK(errno == EINTR);
    status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    printf("child %d exited %s\n", i, status == expected ? "as expected" : "WRONG");
    ok += status == expected;
  }
  atomic_store(&g_stop, 1);
  for (int t = 0; t < nthreads; ++t) LW_CHECK(pthread_join(th[t], NULL) == 0);
  printf("fork_storm: %d of %d children ok\n", ok, forks);
  return ok == forks ? 0 : 1;
}
