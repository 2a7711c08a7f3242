/* Every hooked allocation function with a size that overflows: each must
 * fail as glibc's does (NULL, or an error code, and ENOMEM in errno where
 * glibc sets it), never return a small usable block. Prints one line per
 * call; the test compares them with a run without the shim. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>

#include "lw_check.h"

static void show(const char* what, void* p, int err) {
  printf("%-36s %s errno=%s\n", what, p ? "BLOCK" : "NULL", err == ENOMEM ? "ENOMEM" : err == EINVAL ? "EINVAL" : err ? "other" : "0");
  free(p);
}

#define TRY(expr)       \
  do {                  \
    errno = 0;          \
    void* p_ = (expr);  \
    int e_ = errno;     \
    LW_ESCAPE(p_);      \
    show(#expr, p_, e_); \
  } while (0)

/* Volatile: the sizes reach the calls at run time, never folded away. */
static volatile size_t v_big = SIZE_MAX, v_half = SIZE_MAX / 2 + 1, v_nearly = SIZE_MAX - 4000;

int main(void) {
  const size_t big = v_big, half = v_half, nearly = v_nearly;
  TRY(malloc(big));
  TRY(malloc(half));
  TRY(calloc(big, 2));
  TRY(calloc(half, 2));
  TRY(calloc(1, big));
  TRY(realloc(NULL, big));
  TRY(reallocarray(NULL, big, 3));
  TRY(reallocarray(NULL, half, 2));
  TRY(valloc(big));
  TRY(valloc(nearly));
  TRY(pvalloc(big));
  TRY(pvalloc(nearly));
  TRY(memalign(64, big));
  TRY(memalign(4096, nearly));
  TRY(aligned_alloc(64, big));
  TRY(aligned_alloc(4096, nearly));
  void* keep = malloc(64);
  LW_CHECK(keep);
  errno = 0;
  void* r = realloc(keep, big);
  printf("%-36s %s errno=%s\n", "realloc(keep, big)", r ? "BLOCK" : "NULL", errno == ENOMEM ? "ENOMEM" : "other");
  LW_CHECK(!r);
  errno = 0;
  r = reallocarray(keep, big, 2);
  printf("%-36s %s errno=%s\n", "reallocarray(keep, big, 2)", r ? "BLOCK" : "NULL", errno == ENOMEM ? "ENOMEM" : "other");
  free(keep);
  void* out = (void*)1;
  errno = 0;
  int rc = posix_memalign(&out, 64, big);
  printf("%-36s rc=%s\n", "posix_memalign(&out, 64, big)", rc == ENOMEM ? "ENOMEM" : rc ? "other" : "0");
  rc = posix_memalign(&out, 4096, nearly);
  printf("%-36s rc=%s\n", "posix_memalign(&out, 4096, nearly)", rc == ENOMEM ? "ENOMEM" : rc ? "other" : "0");
  return 0;
}
