/* Every way a block reaches free or realloc -- free, realloc (grow, shrink,
 * to 0), reallocarray, C++ is elsewhere -- for blocks from malloc, calloc,
 * aligned_alloc, posix_memalign, memalign and valloc, of 0 bytes to past
 * glibc's mmap threshold, with every byte that malloc_usable_size reports
 * written (glibc checks its chunks' headers as it frees and merges them, so
 * a usable size that promised a byte too many aborts). Sampled blocks are
 * resized with headroom and followed by the shim's records: the contents
 * must come through, and every record must go when its block does. Prints
 * a checksum of what was read back (a run under the shim must print the
 * same as a plain one); frees everything before it exits.
 * Usage: free_paths [ROUNDS=20000] */
#include <malloc.h>

#include "lw_check.h"

enum { kSlots = 512 };
static void* g_block[kSlots];
static size_t g_len[kSlots];
static uint64_t g_seed[kSlots];

static size_t pick_size(uint64_t r) {
  switch (r % 20) {
    case 0: return 0;
    case 1: return 131072 + (r >> 8) % 200000; /* past the mmap threshold */
    case 2: case 3: case 4: case 5: return (r >> 8) % 65536;
    default: return (r >> 8) % 600;
  }
}

/* Fills the block's n bytes with its pattern, and every usable byte past
 * them with 0xAB. */
static void own(int k, void* p, size_t n, uint64_t seed) {
  LW_CHECK(p != NULL);
  size_t usable = malloc_usable_size(p);
  LW_CHECK(usable >= n);
  lw_fill(p, n, seed);
  memset((char*)p + n, 0xAB, usable - n);
  g_block[k] = p, g_len[k] = n, g_seed[k] = seed;
}

static uint64_t drop(int k, uint64_t h) {
  if (!g_block[k]) return h;
  LW_CHECK(lw_verify(g_block[k], g_len[k], g_seed[k]));
  h = lw_mix(h, g_len[k]);
  free(g_block[k]);
  g_block[k] = NULL;
  return h;
}

__attribute__((noinline)) static uint64_t step(uint64_t r, uint64_t h) {
  int k = (int)(r % kSlots);
  uint64_t r2 = r >> 16;
  size_t n = pick_size(r2);
  uint64_t seed = r ^ 0x5eed;
  size_t align = (size_t)16 << (r2 % 9); /* 16 .. 4096 */
  void* p = NULL;
  switch ((r >> 12) % 10) {
    case 0: h = drop(k, h); own(k, malloc(n), n, seed); break;
    case 1: {
      h = drop(k, h);
      unsigned char* c = calloc(1, n);
      LW_CHECK(c != NULL);
      for (size_t i = 0; i < n; ++i) LW_CHECK(c[i] == 0);
      own(k, c, n, seed);
      break;
    }
    case 2:
      h = drop(k, h);
      p = aligned_alloc(align, (n + align - 1) / align * align);
      LW_CHECK(p && (uintptr_t)p % align == 0);
      own(k, p, n, seed);
      break;
    case 3:
      h = drop(k, h);
      LW_CHECK(posix_memalign(&p, align, n) == 0 && (uintptr_t)p % align == 0);
      own(k, p, n, seed);
      break;
    case 4:
      h = drop(k, h);
      p = (r2 & 1) ? memalign(align, n) : valloc(n);
      LW_CHECK(p && (uintptr_t)p % ((r2 & 1) ? align : 4096) == 0);
      own(k, p, n, seed);
      break;
    case 5: case 6: case 7: case 8: {
      /* Resized in place or moved: the bytes kept must be the old ones. */
      if (!g_block[k]) {
        own(k, malloc(n), n, seed);
        break;
      }
      size_t keep = g_len[k] < n ? g_len[k] : n;
      void* q = (r2 & 1) ? reallocarray(g_block[k], 1, n) : realloc(g_block[k], n);
      if (!q) {  /* glibc's realloc(p, 0) frees p */
        LW_CHECK(n == 0);
        g_block[k] = NULL;
        break;
      }
      LW_CHECK(lw_verify(q, keep, g_seed[k]));
      h = lw_mix(h, keep);
      own(k, q, n, seed);
      break;
    }
    default:
      if (g_block[k]) {
        LW_CHECK(lw_verify(g_block[k], g_len[k], g_seed[k]));
        LW_CHECK(realloc(g_block[k], 0) == NULL);
        g_block[k] = NULL;
      }
  }
  return h;
}

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 20000;
  uint64_t s = 7, h = 0;
  for (long i = 0; i < rounds; ++i) h = step(lw_next(&s), h);
  for (int k = 0; k < kSlots; ++k) h = drop(k, h);
  printf("free-paths: %ld rounds, checksum %016llx\n", rounds, (unsigned long long)h);
  return 0;
}
