/* The floor any LD_PRELOAD allocator shim pays: every entry point
 * forwarded through dlsym(RTLD_NEXT) pointers, nothing else. Calls made
 * while dlsym itself allocates are served from a static buffer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static void* (*r_malloc)(size_t);
static void (*r_free)(void*);
static void* (*r_calloc)(size_t, size_t);
static void* (*r_realloc)(void*, size_t);
static int (*r_posix_memalign)(void**, size_t, size_t);
static void* (*r_aligned_alloc)(size_t, size_t);
static void* (*r_memalign)(size_t, size_t);
static size_t (*r_usable)(void*);

static char boot[65536] __attribute__((aligned(64)));
static size_t boot_used;
static int resolving;

static void* boot_alloc(size_t n) {
  n = (n + 63) & ~(size_t)63;
  if (boot_used + n > sizeof boot) return NULL;
  void* p = boot + boot_used;
  boot_used += n;
  return p;
}
static int in_boot(void* p) { return (char*)p >= boot && (char*)p < boot + sizeof boot; }

static void resolve(void) {
  if (r_malloc || resolving) return;
  resolving = 1;
  r_free = dlsym(RTLD_NEXT, "free");
  r_calloc = dlsym(RTLD_NEXT, "calloc");
  r_realloc = dlsym(RTLD_NEXT, "realloc");
  r_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  r_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  r_memalign = dlsym(RTLD_NEXT, "memalign");
  r_usable = dlsym(RTLD_NEXT, "malloc_usable_size");
  r_malloc = dlsym(RTLD_NEXT, "malloc");
  resolving = 0;
}

void* malloc(size_t n) {
  if (__builtin_expect(!r_malloc, 0)) { resolve(); if (!r_malloc) return boot_alloc(n); }
  return r_malloc(n);
}
void free(void* p) {
  if (__builtin_expect(in_boot(p) || !r_free, 0)) return;
  r_free(p);
}
void* calloc(size_t a, size_t b) {
  if (__builtin_expect(!r_calloc, 0)) { resolve(); if (!r_calloc) return boot_alloc(a * b); }
  return r_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  if (__builtin_expect(!r_realloc, 0)) resolve();
  if (in_boot(p)) { void* q = malloc(n); if (q) memcpy(q, p, n); return q; }
  return r_realloc(p, n);
}
int posix_memalign(void** out, size_t a, size_t n) { resolve(); return r_posix_memalign(out, a, n); }
void* aligned_alloc(size_t a, size_t n) { resolve(); return r_aligned_alloc(a, n); }
void* memalign(size_t a, size_t n) { resolve(); return r_memalign(a, n); }
size_t malloc_usable_size(void* p) { resolve(); return in_boot(p) ? 0 : r_usable(p); }
/* Entry points glibc implements on its internal malloc: without these a
 * caller of reallocarray/valloc/pvalloc would bypass the floor, while
 * leakwatch hooks them. */
void* reallocarray(void* p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) { errno = ENOMEM; return NULL; }
  return realloc(p, n);
}
void* valloc(size_t n) { resolve(); return r_memalign(4096, n); }
void* pvalloc(size_t n) { resolve(); return r_memalign(4096, (n + 4095) & ~(size_t)4095); }
