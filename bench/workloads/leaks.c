// The churn workload plus three leak sites of different rates and sizes,
// the shape leakwatch exists to find: most allocations are transient, a
// few call sites keep what they allocate.
// Usage: leaks [ITERATIONS=20000000]
#include <string.h>

#include "common.h"

enum { kRing = 4096 };

// Leaked blocks stay reachable from these lists (no "definitely lost").
struct node { struct node* next; char payload[]; };
static struct node *g_a, *g_b, *g_c;

static __attribute__((noinline)) void leak_session(uint64_t r) {  // many small
  struct node* n = malloc(sizeof *n + 48);
  memset(n->payload, (int)r, 48);
  n->next = g_a, g_a = n;
}
static __attribute__((noinline)) void leak_cache_entry(uint64_t r) {  // fewer, 1 KiB
  struct node* n = malloc(sizeof *n + 1024);
  memset(n->payload, (int)r, 1024);
  n->next = g_b, g_b = n;
}
static __attribute__((noinline)) void leak_buffer(uint64_t r) {  // rare, 64 KiB
  struct node* n = malloc(sizeof *n + 65536);
  memset(n->payload, (int)r, 65536);
  n->next = g_c, g_c = n;
}

int main(int argc, char** argv) {
  long iters = wl_arg(argc, argv, 1, 20000000);
  uint64_t seed = 42, sum = 0;
  char** ring = calloc(kRing, sizeof *ring);
  for (long i = 0; i < iters; ++i) {
    uint64_t r = wl_next(&seed);
    size_t slot = r & (kRing - 1);
    size_t n = 16 + ((r >> 32) & 255);
    if (ring[slot]) sum += (unsigned char)ring[slot][0];
    free(ring[slot]);
    ring[slot] = malloc(n);
    ring[slot][0] = (char)r;
    if ((i & 511) == 0) leak_session(r);
    if ((i & 4095) == 0) leak_cache_entry(r);
    if ((i & 65535) == 0) leak_buffer(r);
  }
  for (struct node* n = g_a; n; n = n->next) sum += (unsigned char)n->payload[0];
  for (struct node* n = g_b; n; n = n->next) sum += (unsigned char)n->payload[1];
  for (struct node* n = g_c; n; n = n->next) sum += (unsigned char)n->payload[2];
  wl_checksum(sum);
  return 0;
}
