/* Allocates without end from many distinct call stacks (so every dump is
 * large and takes a while to write), until killed or until SECONDS pass.
 * Prints "ready" once started. Usage: kill_churn SECONDS */
#include <time.h>

#include "lw_check.h"

static void* g_keep[4096];

/* A call chain whose shape spells the bits of `path`: up to 2^depth
 * distinct stacks to the same malloc. */
__attribute__((noinline)) static void* churn_leaf(size_t n) {
  void* p = malloc(n);
  LW_ESCAPE(p);
  return p;
}
__attribute__((noinline)) static void* churn_a(unsigned path, int depth, size_t n);
__attribute__((noinline)) static void* churn_b(unsigned path, int depth, size_t n);
/* Two distinct call sites in each function (the volatile counters keep
 * the compiler from merging them into one call through a pointer). */
static volatile unsigned g_calls_a, g_calls_b;
__attribute__((noinline)) static void* churn_a(unsigned path, int depth, size_t n) {
  void* p;
  if (depth == 0) {
    p = churn_leaf(n);
  } else if (path & 1) {
    p = churn_b(path >> 1, depth - 1, n);
    g_calls_a += 1;
  } else {
    p = churn_a(path >> 1, depth - 1, n);
    g_calls_a += 2;
  }
  LW_ESCAPE(p);
  return p;
}
__attribute__((noinline)) static void* churn_b(unsigned path, int depth, size_t n) {
  void* p;
  if (depth == 0) {
    p = churn_leaf(n);
  } else if (path & 1) {
    p = churn_b(path >> 1, depth - 1, n);
    g_calls_b += 3;
  } else {
    p = churn_a(path >> 1, depth - 1, n);
    g_calls_b += 4;
  }
  LW_ESCAPE(p);
  return p;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 30;
  double end = now() + seconds;
  printf("ready\n");
  fflush(stdout);
  uint64_t rng = 1;
  for (long i = 0;; ++i) {
    uint64_t r = lw_next(&rng);
    unsigned slot = (unsigned)(r % 4096);
    free(g_keep[slot]);
    g_keep[slot] = churn_a((unsigned)(r >> 20), 11, 16 + (r >> 40) % 2000);
    if ((i & 1023) == 0 && now() > end) break;
  }
  printf("time is up\n");
  return 0;
}
