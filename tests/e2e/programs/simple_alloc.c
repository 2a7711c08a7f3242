/* A small, ordinary program: allocates, frees, leaks from simple_leak,
 * prints one checksum line.
 * Usage: simple_alloc [ROUNDS [EXIT_CODE [thread]]]
 *   EXIT_CODE: leave with exit(EXIT_CODE) instead of returning from main;
 *   thread: call that exit() from a second thread while main waits. */
#include <pthread.h>

#include "lw_check.h"

static int g_code;
static void* exit_from_thread(void* arg) {
  (void)arg;
  fflush(stdout);
  exit(g_code);
}

__attribute__((noinline)) void* simple_leak(size_t n, uint64_t seed) {
  void* p = malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, seed);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20000;
  uint64_t rng = 99, h = 0;
  void* keep[32] = {0};
  for (int i = 0; i < rounds; ++i) {
    uint64_t r = lw_next(&rng);
    int s = (int)(r % 32);
    free(keep[s]);
    size_t n = 1 + (r >> 8) % 3000;
    keep[s] = malloc(n);
    LW_CHECK(keep[s]);
    lw_fill(keep[s], n, r);
    h = lw_hash(h, keep[s], n < 8 ? n : 8);
    if (i % 100 == 0) simple_leak(1024, r);
  }
  for (int s = 0; s < 32; ++s) free(keep[s]);
  printf("simple_alloc checksum %016llx\n", (unsigned long long)h);
  if (argc > 2) {
    g_code = atoi(argv[2]);
    if (argc > 3 && !strcmp(argv[3], "thread")) {
      pthread_t t;
      LW_CHECK(pthread_create(&t, NULL, exit_from_thread, NULL) == 0);
      pthread_join(t, NULL);  /* never returns: the thread exits the process */
    }
    exit(g_code);
  }
  return 0;
}
