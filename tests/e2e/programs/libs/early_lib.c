/* A shared library that allocates from its constructor, i.e. possibly
 * before the shim's own constructor has run (the test preloads it before
 * and after the shim). Built by the test with `cc -shared -fPIC -g`.
 * The blocks are checked, grown and freed later, from main(), through
 * early_lib_checksum(). Lives in a subfolder so that the e2e CMake does not
 * build it as a program. */
#define _GNU_SOURCE
#include <malloc.h>
#include <string.h>

#include "../lw_check.h"

static void* g_block[8];
static size_t g_size[8];
static char* g_str;
static void* g_aligned;

__attribute__((constructor)) static void early_lib_init(void) {
  for (int i = 0; i < 8; ++i) {
    g_size[i] = (size_t)(17 + i * 700);
    g_block[i] = (i & 1) ? calloc(1, g_size[i]) : malloc(g_size[i]);
    LW_CHECK(g_block[i]);
    lw_fill(g_block[i], g_size[i], 100 + (uint64_t)i);
    LW_CHECK(malloc_usable_size(g_block[i]) >= g_size[i]);
  }
  g_block[3] = realloc(g_block[3], g_size[3] * 3);
  LW_CHECK(g_block[3]);
  g_str = strdup("allocated in a library constructor");
  LW_CHECK(posix_memalign(&g_aligned, 256, 1000) == 0);
  LW_CHECK(((uintptr_t)g_aligned & 255) == 0);
  memset(g_aligned, 5, 1000);
}

unsigned long long early_lib_checksum(void) {
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) {
    LW_CHECK(lw_verify(g_block[i], g_size[i], 100 + (uint64_t)i));
    h = lw_hash(h, g_block[i], g_size[i]);
    void* grown = realloc(g_block[i], g_size[i] + 100000);  /* leaves wherever it was allocated */
    LW_CHECK(grown);
    LW_CHECK(lw_verify(grown, g_size[i], 100 + (uint64_t)i));
    free(grown);
  }
  h = lw_hash(h, g_str, strlen(g_str));
  free(g_str);
  h = lw_hash(h, g_aligned, 1000);
  free(g_aligned);
  return (unsigned long long)h;
}
