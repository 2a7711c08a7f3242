/* Frees blocks the way Python's ctypes.CDLL("libc.so.6").free does: with the
 * free that dlsym finds on libc's own handle, which is libc's and not the
 * preloaded shim's. The shim cannot see those frees; it must not crash on
 * them (a sampled block must still be a block glibc handed out), and the
 * records they leave must go once glibc hands the address out again.
 * Each round: a block from one site freed past the shim, then a block of
 * the same size from another site (glibc's tcache gives the same address)
 * freed normally. Prints a checksum.
 * Usage: bypass_free [ROUNDS=20000] */
#include <dlfcn.h>

#include "lw_check.h"

/* noipa: two sites, not one (the compiler would fold identical bodies). */
__attribute__((noipa)) static char* freed_past_the_shim(size_t n) {
  char* p = malloc(n);
  LW_ESCAPE(p);
  return p;
}

__attribute__((noipa)) static char* freed_normally(size_t n) {
  char* p = malloc(n);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 20000;
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  LW_CHECK(libc != NULL);
  void (*libc_free)(void*) = (void (*)(void*))dlsym(libc, "free");
  LW_CHECK(libc_free != NULL);
  uint64_t h = 0, s = 3;
  for (long i = 0; i < rounds; ++i) {
    size_t n = 64 + (lw_next(&s) % 4) * 100;
    char* p = freed_past_the_shim(n);
    lw_fill(p, n, (uint64_t)i);
    h = lw_hash(h, p, n);
    libc_free(p);
    char* q = freed_normally(n);
    lw_fill(q, n, (uint64_t)i + 1);
    h = lw_hash(h, q, n);
    free(q);
  }
  printf("bypass-free: %ld rounds, checksum %016llx\n", rounds, (unsigned long long)h);
  return 0;
}
