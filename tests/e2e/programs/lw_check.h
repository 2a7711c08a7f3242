/* Shared by the e2e test programs (header only, so the programs stay one
 * file each): a deterministic PRNG, a checksum, and a fatal check. Output
 * of every program is a pure function of its arguments, so a run under the
 * shim can be compared byte for byte with a run without it. */
#ifndef LW_CHECK_H
#define LW_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: one state word, deterministic across runs. */
static inline uint64_t lw_next(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* FNV-1a over bytes, folded into a running sum. */
static inline uint64_t lw_hash(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = (const unsigned char*)data;
  if (!h) h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

static inline uint64_t lw_mix(uint64_t h, uint64_t v) { return lw_hash(h, &v, sizeof v); }

/* Fills n bytes with a pattern derived from seed. */
static inline void lw_fill(void* p, size_t n, uint64_t seed) {
  unsigned char* b = (unsigned char*)p;
  for (size_t i = 0; i < n; ++i) b[i] = (unsigned char)((seed >> ((i & 7) * 8)) + i);
}

/* 1 when p holds exactly the pattern of lw_fill(p, n, seed). */
static inline int lw_verify(const void* p, size_t n, uint64_t seed) {
  const unsigned char* b = (const unsigned char*)p;
  for (size_t i = 0; i < n; ++i)
    if (b[i] != (unsigned char)((seed >> ((i & 7) * 8)) + i)) return 0;
  return 1;
}

#define LW_CHECK(cond)                                                               \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
      fflush(stderr);                                                                \
      abort();                                                                       \
    }                                                                                \
  } while (0)

/* Seconds on the monotonic clock. */
static inline double lw_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resident bytes, as the kernel counts them (/proc/self/statm). */
static inline long lw_rss_bytes(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  LW_CHECK(f && fscanf(f, "%ld %ld", &size, &res) == 2);
  fclose(f);
  return res * sysconf(_SC_PAGESIZE);
}

/* Keeps the compiler from dropping or merging an allocation. */
#define LW_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

#endif
