/* A plugin for dlopen_host (built by the test itself with
 * `cc -shared -fPIC -g`; the CMake target of this name is EXCLUDE_FROM_ALL).
 * Allocates in its constructor and from plugin_leak_alloc, which leaks. */
#include "lw_check.h"

static void* g_ctor_block;
static void* g_kept[64];

__attribute__((constructor)) static void plugin_init(void) {
  g_ctor_block = malloc(3000);
  LW_CHECK(g_ctor_block);
  lw_fill(g_ctor_block, 3000, 9);
}

__attribute__((destructor)) static void plugin_fini(void) { free(g_ctor_block); }

__attribute__((noinline)) void* plugin_leak_alloc(size_t n, uint64_t seed) {
  void* p = malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, seed);
  LW_ESCAPE(p);
  return p;
}

/* Called by the host: allocates, checks, leaks `count` blocks of 8 KiB. */
unsigned long long plugin_run(int count) {
  uint64_t h = 0, rng = 3;
  LW_CHECK(lw_verify(g_ctor_block, 3000, 9));
  for (int i = 0; i < 1000; ++i) {
    uint64_t r = lw_next(&rng);
    size_t n = 1 + r % 4000;
    void* p = calloc(1, n);
    LW_CHECK(p);
    lw_fill(p, n, r);
    h = lw_hash(h, p, n < 16 ? n : 16);
    free(p);
  }
  for (int i = 0; i < count && i < 64; ++i) g_kept[i] = plugin_leak_alloc(8192, (uint64_t)i);
  for (int i = 0; i < count && i < 64; ++i) h = lw_hash(h, g_kept[i], 64);
  return (unsigned long long)h;
}
