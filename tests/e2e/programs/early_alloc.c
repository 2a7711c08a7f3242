/* Allocations before main: from .preinit_array (before any library
 * constructor, the shim's included), from constructors of several
 * priorities, and from a preloaded library's constructor (libs/early_lib.c,
 * found through a weak reference when the test preloads it). Also makes
 * dlsym/dlerror allocate and free, as the shim's own bootstrap does.
 * Prints one checksum line per phase. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <string.h>

#include "lw_check.h"

unsigned long long early_lib_checksum(void) __attribute__((weak));

static void* g_pre[6];
static void* g_ctor[6];
static uint64_t g_pre_sum, g_ctor_sum;

static void alloc_set(void** out, uint64_t seed, uint64_t* sum) {
  uint64_t rng = seed;
  for (int i = 0; i < 6; ++i) {
    size_t n = 1 + lw_next(&rng) % 5000;
    switch (i % 3) {
      case 0: out[i] = malloc(n); break;
      case 1: out[i] = calloc(n, 1); break;
      default: out[i] = realloc(NULL, n);
    }
    LW_CHECK(out[i]);
    lw_fill(out[i], n, seed + (uint64_t)i);
    LW_CHECK(malloc_usable_size(out[i]) >= n);
    *sum = lw_hash(*sum, out[i], n);
  }
  void* tmp = NULL;
  LW_CHECK(posix_memalign(&tmp, 64, 300) == 0);
  LW_CHECK(((uintptr_t)tmp & 63) == 0);
  free(tmp);
  char* s = strdup("early");
  LW_CHECK(s);
  *sum = lw_hash(*sum, s, 5);
  free(s);
}

static void preinit(int argc, char** argv, char** envp) {
  (void)argc, (void)argv, (void)envp;
  alloc_set(g_pre, 11, &g_pre_sum);
}
__attribute__((section(".preinit_array"), used)) static void (*const g_preinit)(int, char**, char**) = preinit;

__attribute__((constructor(101))) static void ctor_first(void) { alloc_set(g_ctor, 22, &g_ctor_sum); }
__attribute__((constructor)) static void ctor_last(void) {
  for (int i = 0; i < 6; i += 2) g_ctor[i] = realloc(g_ctor[i], 6000);  /* grow blocks made earlier */
}

int main(void) {
  printf("preinit checksum %016llx\n", (unsigned long long)g_pre_sum);
  printf("constructor checksum %016llx\n", (unsigned long long)g_ctor_sum);
  for (int i = 0; i < 6; ++i) {
    free(g_pre[i]);
    free(g_ctor[i]);
  }
  /* dlsym failures make the loader allocate an error message, which the
   * next failure frees. */
  for (int i = 0; i < 3; ++i) {
    LW_CHECK(dlsym(RTLD_DEFAULT, "no_such_symbol_lw_e2e") == NULL);
    const char* e = dlerror();
    LW_CHECK(e && strstr(e, "no_such_symbol_lw_e2e"));
  }
  printf("dlerror ok\n");
  if (early_lib_checksum)
    printf("library constructor checksum %016llx\n", early_lib_checksum());
  else
    printf("library not preloaded\n");
  return 0;
}
