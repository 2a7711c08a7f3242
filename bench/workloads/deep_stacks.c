// Allocations from deep call stacks: each descent walks one of 4,096
// distinct paths 40..60 frames deep and, at the bottom, replaces a few
// blocks of a shared ring of live allocations (free + malloc).
// Usage: deep_stacks [DESCENTS=1500000]
#include "common.h"
#include "paths.h"

enum { kRing = 8192, kPerLeaf = 4 };
static char* g_ring[kRing];
static uint64_t g_seed = 99;

static uint64_t leaf(uint32_t path) {
  uint64_t sum = 0;
  for (int i = 0; i < kPerLeaf; ++i) {
    uint64_t r = wl_next(&g_seed);
    size_t slot = r & (kRing - 1);
    size_t n = 32 + ((r >> 32) & 511);
    if (g_ring[slot]) sum += (unsigned char)g_ring[slot][0];
    free(g_ring[slot]);
    g_ring[slot] = malloc(n);
    g_ring[slot][0] = (char)(path + i);
  }
  return sum;
}

int main(int argc, char** argv) {
  long descents = wl_arg(argc, argv, 1, 1500000);
  wl_paths_init(leaf);
  uint64_t sum = 0;
  for (long d = 0; d < descents; ++d) {
    uint32_t path = (uint32_t)((d * 2654435761u) & 4095);
    sum += wl_walk(path, 40 + (int)(path % 21));
  }
  for (int i = 0; i < kRing; ++i) free(g_ring[i]);
  wl_checksum(sum);
  return 0;
}
