/* Opened (by deep_loader) with or without RTLD_DEEPBIND: frees blocks the
 * host allocated, and keeps blocks it allocates itself. With the flag its
 * malloc and free bind to libc directly unless the shim redirects them. */
#include <stdlib.h>
#include <string.h>

static void* g_kept[1024];
static int g_nkept;

void deep_free(void* p) { free(p); }

__attribute__((noinline)) void* deep_keep_alloc(size_t n) {
  void* p = malloc(n);
  if (p) memset(p, 0x44, n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

int deep_keep(int count, size_t n) {
  for (int i = 0; i < count && g_nkept < 1024; ++i) g_kept[g_nkept++] = deep_keep_alloc(n);
  return g_nkept;
}
