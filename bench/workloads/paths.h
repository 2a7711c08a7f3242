// Call paths for the stack-heavy workloads: 16 distinct functions that
// call each other according to a path number, so path P at depth D gives
// a stack of D frames whose first three levels spell P's low 12 bits
// (4,096 distinct prefixes) and whose deeper levels are a hash of (P,
// level). No inlining, no tail calls: every level is a real frame.
#pragma once
#include <stdint.h>

typedef uint64_t (*wl_leaf_fn)(uint32_t path);
typedef uint64_t (*wl_level_fn)(uint32_t path, int level, int depth);

static wl_leaf_fn wl_leaf;
static wl_level_fn wl_levels[16];

static inline int wl_pick(uint32_t path, int level) {
  if (level < 3) return (int)(((path >> (4 * level)) ^ (uint32_t)level) & 15);
  uint32_t h = (path + 1) * 2654435761u ^ (uint32_t)level * 40503u;
  return (int)((h >> 13) & 15);
}

#define WL_LEVEL(k)                                                                            \
  static __attribute__((noinline)) uint64_t wl_level_##k(uint32_t path, int level, int depth) { \
    if (level >= depth) return wl_leaf(path);                                                  \
    uint64_t r = wl_levels[wl_pick(path, level)](path, level + 1, depth);                      \
    __asm__ volatile("" : "+r"(r)::"memory"); /* keeps this frame: no tail call */              \
    return r + k;                                                                              \
  }
WL_LEVEL(0) WL_LEVEL(1) WL_LEVEL(2) WL_LEVEL(3) WL_LEVEL(4) WL_LEVEL(5) WL_LEVEL(6) WL_LEVEL(7)
WL_LEVEL(8) WL_LEVEL(9) WL_LEVEL(10) WL_LEVEL(11) WL_LEVEL(12) WL_LEVEL(13) WL_LEVEL(14) WL_LEVEL(15)

static void wl_paths_init(wl_leaf_fn leaf) {
  wl_leaf = leaf;
  wl_level_fn f[16] = {wl_level_0,  wl_level_1,  wl_level_2,  wl_level_3, wl_level_4,  wl_level_5,
                       wl_level_6,  wl_level_7,  wl_level_8,  wl_level_9, wl_level_10, wl_level_11,
                       wl_level_12, wl_level_13, wl_level_14, wl_level_15};
  for (int i = 0; i < 16; ++i) wl_levels[i] = f[i];
}

// Walks path `path` down to `depth` frames below the caller and runs the leaf.
static inline uint64_t wl_walk(uint32_t path, int depth) { return wl_levels[wl_pick(path, 0)](path, 1, depth); }
