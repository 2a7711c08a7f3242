/* The floor any LD_PRELOAD allocator shim pays: every entry point
 * forwarded through dlsym(RTLD_NEXT) pointers, nothing else. Calls made
 * while dlsym itself allocates are served from a static buffer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static void* (*r_malloc)(size_t);
static void (*r_free)(void*);
static void* (*r_calloc)(size_t, size_t);
static void* (*r_realloc)(void*, size_t);
static int (*r_posix_memalign)(void**, size_t, size_t);
static void* (*r_aligned_alloc)(size_t, size_t);
static void* (*r_memalign)(size_t, size_t);
static size_t (*r_usable)(void*);
static void* (*r_mmap)(void*, size_t, int, int, int, off_t);
static int (*r_munmap)(void*, size_t);
static void* (*r_mremap)(void*, size_t, size_t, int, ...);

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
  r_mmap = dlsym(RTLD_NEXT, "mmap");
  r_munmap = dlsym(RTLD_NEXT, "munmap");
  r_mremap = dlsym(RTLD_NEXT, "mremap");
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

/* The mapping calls the shim hooks too (all-memory tracking), forwarded
 * the same way; before the first malloc resolves them, straight to the
 * kernel. */
void* mmap(void* a, size_t n, int prot, int flags, int fd, off_t off) {
  if (__builtin_expect(!r_mmap, 0)) return (void*)syscall(SYS_mmap, a, n, prot, flags, fd, off);
  return r_mmap(a, n, prot, flags, fd, off);
}
void* mmap64(void* a, size_t n, int prot, int flags, int fd, off_t off) { return mmap(a, n, prot, flags, fd, off); }
int munmap(void* a, size_t n) {
  if (__builtin_expect(!r_munmap, 0)) return (int)syscall(SYS_munmap, a, n);
  return r_munmap(a, n);
}
void* mremap(void* old, size_t old_size, size_t new_size, int flags, ...) {
  void* want = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    want = va_arg(ap, void*);
    va_end(ap);
  }
  if (__builtin_expect(!r_mremap, 0)) return (void*)syscall(SYS_mremap, old, old_size, new_size, flags, want);
  return r_mremap(old, old_size, new_size, flags, want);
}
