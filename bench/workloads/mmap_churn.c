// Mapping churn, as an allocator or arena of one's own does it: keeps a
// ring of 256 anonymous mappings of 4 KiB..1 MiB (touched page by page)
// and replaces a random one per iteration (munmap + mmap), growing and
// shrinking some with mremap. Every call goes through the shim's mmap
// hooks; the bare interposer forwards them only.
// Usage: mmap_churn [ITERATIONS=200000]
#define _GNU_SOURCE
#include <sys/mman.h>

#include "common.h"

enum { kRing = 256 };

int main(int argc, char** argv) {
  long iters = wl_arg(argc, argv, 1, 200000);
  char* ring[kRing] = {0};
  size_t size[kRing] = {0};
  uint64_t seed = 12345, sum = 0;
  for (long i = 0; i < iters; ++i) {
    uint64_t r = wl_next(&seed);
    size_t slot = r % kRing;
    if (ring[slot]) {
      sum += (unsigned char)ring[slot][0];
      if ((r >> 20) % 8 == 0) {  // one in eight: resize in place or move
        size_t n = 4096 * (1 + (r >> 40) % 256);
        void* p = mremap(ring[slot], size[slot], n, MREMAP_MAYMOVE);
        if (p == MAP_FAILED) return 3;
        ring[slot] = p, size[slot] = n;
        ring[slot][n - 1] = 1;
        continue;
      }
      munmap(ring[slot], size[slot]);
    }
    size_t n = 4096 * (1 + (r >> 40) % 256);
    char* p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 3;
    for (size_t at = 0; at < n; at += 4096 * 16) p[at] = (char)r;  // touch every 16th page
    ring[slot] = p, size[slot] = n;
  }
  for (int i = 0; i < kRing; ++i)
    if (ring[i]) munmap(ring[i], size[i]);
  wl_checksum(sum);
  return 0;
}
