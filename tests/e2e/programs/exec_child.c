/* Started by fork_storm (fork+exec or posix_spawn): allocates, checks,
 * leaks a little from exec_child_leak, prints one line. Usage: exec_child N */
#include "lw_check.h"

__attribute__((noinline)) void* exec_child_leak(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 7, n);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 0;
  uint64_t rng = 42 + (uint64_t)n, h = 0;
  /* Leak first: a child slowed down by a busy machine may take several
   * periodic dumps, and the report leaves the final one out of the trend. */
  for (int i = 0; i < 3; ++i) exec_child_leak(2048);
  for (int i = 0; i < 2000; ++i) {
    uint64_t r = lw_next(&rng);
    size_t sz = 1 + r % 5000;
    char* p = malloc(sz);
    LW_CHECK(p);
    lw_fill(p, sz, r);
    h = lw_hash(h, p, sz < 32 ? sz : 32);
    free(p);
  }
  printf("exec_child %d checksum %016llx\n", n, (unsigned long long)h);
  return 0;
}
