// Shared bits of the benchmark workloads: a deterministic PRNG and the
// checksum line every workload prints, so the compiler cannot drop the
// work and the harness can check every configuration computed the same.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline uint64_t wl_next(uint64_t* s) {
  // splitmix64: deterministic and cheap next to malloc.
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline long wl_arg(int argc, char** argv, int i, long dflt) {
  return argc > i ? strtol(argv[i], NULL, 10) : dflt;
}

static inline void wl_checksum(uint64_t sum) { printf("checksum=%llu\n", (unsigned long long)sum); }
