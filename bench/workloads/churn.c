// Small-object churn: each thread keeps a ring of 4,096 live blocks of
// 16..271 bytes and replaces a random one per iteration (free + malloc).
// Usage: churn [THREADS=1] [ITERATIONS_PER_THREAD=20000000]
#include <pthread.h>
#include <string.h>

#include "common.h"

enum { kRing = 4096 };
static long g_iters;

static void* worker(void* arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg * 1000003u + 17;
  char** ring = calloc(kRing, sizeof *ring);
  uint64_t sum = 0;
  for (long i = 0; i < g_iters; ++i) {
    uint64_t r = wl_next(&seed);
    size_t slot = r & (kRing - 1);
    size_t n = 16 + ((r >> 32) & 255);
    if (ring[slot]) sum += (unsigned char)ring[slot][0];
    free(ring[slot]);
    ring[slot] = malloc(n);
    ring[slot][0] = (char)r;
    ring[slot][n - 1] = 1;
  }
  for (int i = 0; i < kRing; ++i) free(ring[i]);
  free(ring);
  return (void*)(uintptr_t)sum;
}

int main(int argc, char** argv) {
  int threads = (int)wl_arg(argc, argv, 1, 1);
  g_iters = wl_arg(argc, argv, 2, 20000000);
  pthread_t t[64];
  if (threads < 1 || threads > 64) return 2;
  for (int i = 0; i < threads; ++i) pthread_create(&t[i], NULL, worker, (void*)(uintptr_t)(i + 1));
  uint64_t sum = 0;
  for (int i = 0; i < threads; ++i) {
    void* r;
    pthread_join(t[i], &r);
    sum += (uint64_t)(uintptr_t)r;
  }
  wl_checksum(sum);
  return 0;
}
