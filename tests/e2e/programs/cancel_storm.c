/* A host that cancels its threads while they allocate (deferred
 * cancellation). The workers' own code reaches a cancellation point only at
 * an explicit pthread_testcancel every 64 allocations; the other ones they
 * reach are inside the shim (a dump's open/write/close, /proc reads at a
 * checkpoint or a loaded-objects rebuild, libunwind's address checks) --
 * where a cancelled thread would leave the shim's shared state held.
 * Usage: cancel_storm ROUNDS < commands
 *   ROUNDS rounds of 4 workers, each cancelled after a few milliseconds (a
 *   different moment every time), then a fork whose child allocates (the
 *   fork barrier must not be waiting for a cancelled unwinder) and exits;
 *   prints "rounds done" (flushed), then reads lines until end of input:
 *   "tick" allocates and frees a little (the shim dumps from allocations).
 *   At end of input prints "bye" and exits normally (final dump). */
#include <pthread.h>
#include <sys/wait.h>

#include "lw_check.h"

__attribute__((noinline)) static void* storm_alloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 0x3c, n < 64 ? n : 64);
  LW_ESCAPE(p);
  return p;
}

static void* worker(void* arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  void* ring[32] = {0};
  for (unsigned i = 0;; ++i) {
    free(ring[i % 32]);
    ring[i % 32] = storm_alloc(16 + lw_next(&seed) % 4000);
    if ((i & 63) == 63) pthread_testcancel();
  }
  return NULL;
}

__attribute__((noinline)) static void child_work(void) {
  for (int i = 0; i < 2000; ++i) free(storm_alloc(64 + (size_t)i));
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 2);
  int rounds = atoi(argv[1]);
  uint64_t rng = 7;
  for (int r = 0; r < rounds; ++r) {
    pthread_t t[4];
    for (int w = 0; w < 4; ++w)
      LW_CHECK(pthread_create(&t[w], NULL, worker, (void*)(uintptr_t)(r * 4 + w + 1)) == 0);
    for (int w = 0; w < 4; ++w) {
      struct timespec pause = {0, (long)(lw_next(&rng) % 8000000)};
      nanosleep(&pause, NULL);
      LW_CHECK(pthread_cancel(t[w]) == 0);
    }
    for (int w = 0; w < 4; ++w) {
      void* ret = NULL;
      LW_CHECK(pthread_join(t[w], &ret) == 0);
      LW_CHECK(ret == PTHREAD_CANCELED);
    }
  }
  pid_t pid = fork();
  LW_CHECK(pid >= 0);
  if (pid == 0) {
    child_work();
    exit(0);
  }
  int status = 0;
  LW_CHECK(waitpid(pid, &status, 0) == pid);
  LW_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  printf("rounds done\n");
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "tick", 4) == 0) child_work();
  }
  printf("bye\n");
  return 0;
}
