/* The aligned and odd allocation entry points, with their error cases:
 * posix_memalign (valid and invalid alignments), aligned_alloc, memalign,
 * valloc, pvalloc, realloc growth of aligned blocks, malloc_usable_size,
 * reallocarray and calloc overflow, realloc to 0, free(NULL).
 * Every result (pointer null or not, errno, alignment, contents) goes into
 * the printed lines, so a run under the shim must print the same; facts
 * the C library guarantees are also checked here (abort otherwise). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <unistd.h>

#include "lw_check.h"

static uint64_t g_h;
static void note(const char* what, uint64_t v) {
  g_h = lw_hash(g_h, what, strlen(what));
  g_h = lw_mix(g_h, v);
}
static int aligned_to(const void* p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Fills, checks usable size, grows with realloc, checks contents, frees. */
static void exercise(const char* what, void* p, size_t n, size_t align, uint64_t seed) {
  LW_CHECK(p);
  LW_CHECK(aligned_to(p, align));
  LW_CHECK(malloc_usable_size(p) >= n);
  lw_fill(p, n, seed);
  size_t grown = n * 3 + 4096;
  void* q = realloc(p, grown);
  LW_CHECK(q);
  LW_CHECK(lw_verify(q, n, seed));
  LW_CHECK(malloc_usable_size(q) >= grown);
  lw_fill(q, grown, seed + 1);
  void* r = realloc(q, n / 2 + 1);  /* shrink */
  LW_CHECK(r);
  LW_CHECK(lw_verify(r, n / 2 + 1, seed + 1));
  note(what, lw_hash(0, r, n / 2 + 1));
  free(r);
}

int main(void) {
  static const size_t sizes[] = {1, 8, 24, 100, 4095, 4096, 4097, 70000, 300000};
  static const size_t aligns[] = {8, 16, 32, 64, 128, 256, 4096, 8192, 65536};
  const long page = sysconf(_SC_PAGESIZE);

  for (unsigned a = 0; a < sizeof aligns / sizeof *aligns; ++a)
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; ++s) {
      size_t al = aligns[a], n = sizes[s];
      uint64_t seed = a * 100 + s;
      void* p = (void*)1;
      LW_CHECK(posix_memalign(&p, al, n) == 0);
      exercise("posix_memalign", p, n, al, seed);
      size_t an = (n + al - 1) / al * al;  /* C11: size a multiple of the alignment */
      exercise("aligned_alloc", aligned_alloc(al, an), an, al, seed);
      exercise("memalign", memalign(al, n), n, al, seed);
    }
  for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; ++s) {
    size_t n = sizes[s];
    exercise("valloc", valloc(n), n, (size_t)page, s);
    void* pv = pvalloc(n);
    LW_CHECK(pv);
    LW_CHECK(malloc_usable_size(pv) >= (n + (size_t)page - 1) / (size_t)page * (size_t)page);
    exercise("pvalloc", pv, n, (size_t)page, s);
  }
  printf("aligned allocations %016llx\n", (unsigned long long)g_h);

  /* posix_memalign errors: EINVAL for alignments that are not a power of
   * two multiple of sizeof(void*), and *out left alone. */
  static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, 4097, (size_t)1 << 63 | 8};
  g_h = 0;
  for (unsigned i = 0; i < sizeof bad / sizeof *bad; ++i) {
    void* p = (void*)0x1234;
    int rc = posix_memalign(&p, bad[i], 100);
    LW_CHECK(rc == EINVAL);
    LW_CHECK(p == (void*)0x1234);
    note("posix_memalign EINVAL", (uint64_t)rc);
  }
  {
    void* p = (void*)0x1234;
    int rc = posix_memalign(&p, (size_t)1 << 40, 100);  /* valid, but too big to serve */
    note("posix_memalign huge", (uint64_t)rc);
    if (rc == 0) free(p);
  }
  /* What the C library does with odd alignments elsewhere is its business;
   * the shim must not change it. */
  static const size_t odd[] = {0, 3, 24, 48, 100};
  for (unsigned i = 0; i < sizeof odd / sizeof *odd; ++i) {
    errno = 0;
    void* p = aligned_alloc(odd[i], 96);
    note("aligned_alloc odd", p ? 1000 + ((uintptr_t)p & 15) : (uint64_t)errno);
    free(p);
    errno = 0;
    p = memalign(odd[i], 96);
    note("memalign odd", p ? 1000 + ((uintptr_t)p & 15) : (uint64_t)errno);
    free(p);
  }
  printf("alignment errors %016llx\n", (unsigned long long)g_h);

  /* Overflows and corner cases. */
  g_h = 0;
  /* volatile: sizes the compiler must not see (it warns about them). */
  volatile size_t big = SIZE_MAX / 2, three = 3, two33 = (size_t)1 << 33, huge = SIZE_MAX - 100;
  char* base = malloc(64);
  LW_CHECK(base);
  memset(base, 9, 64);
  errno = 0;
  LW_CHECK(reallocarray(base, big, three) == NULL);
  LW_CHECK(errno == ENOMEM);
  for (int i = 0; i < 64; ++i) LW_CHECK(base[i] == 9);  /* the block is untouched */
  errno = 0;
  LW_CHECK(reallocarray(NULL, two33, two33) == NULL);
  LW_CHECK(errno == ENOMEM);
  char* ra = reallocarray(base, 100, 20);
  LW_CHECK(ra);
  for (int i = 0; i < 64; ++i) LW_CHECK(ra[i] == 9);
  free(ra);
  errno = 0;
  LW_CHECK(calloc(big, three) == NULL);
  LW_CHECK(errno == ENOMEM);
  errno = 0;
  LW_CHECK(malloc(huge) == NULL);
  LW_CHECK(errno == ENOMEM);
  for (int round = 0; round < 200; ++round) {
    /* calloc must hand out zeroes even where malloc just left garbage. */
    size_t n = 16 + (size_t)round * 37;
    char* g = malloc(n);
    memset(g, 0xAB, n);
    free(g);
    char* z = calloc(n, 1);
    LW_CHECK(z);
    for (size_t i = 0; i < n; ++i) LW_CHECK(z[i] == 0);
    free(z);
  }
  free(NULL);
  LW_CHECK(malloc_usable_size(NULL) == 0);
  void* zero = malloc(0);
  note("malloc(0) non-null", zero != NULL);
  free(zero);
  void* r0 = malloc(100);
  r0 = realloc(r0, 0);  /* glibc: frees, returns NULL */
  note("realloc(p, 0)", r0 != NULL);
  free(r0);
  void* rn = realloc(NULL, 200);
  LW_CHECK(rn);
  free(rn);
  printf("corner cases %016llx\n", (unsigned long long)g_h);
  return 0;
}
