/* A steady leak for the heap-profile import tests (tests/e2e/cases/
 * test_import.py), run under jemalloc's or gperftools' own heap profiler:
 *   import_leak_site : 1 KiB every millisecond, never freed (~1 MB/s)
 *   import_churn     : 4 KiB allocated and freed every millisecond, so the
 *                      allocators' "dump every N bytes allocated" fires often
 * Usage: import_leaker SECONDS. Prints "leaked BYTES" at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void* volatile g_keep;

__attribute__((noinline)) void* import_leak_site(size_t n) {
  void* p = malloc(n);
  memset(p, 1, n);
  return p;
}

__attribute__((noinline)) void import_churn(size_t n) {
  char* p = malloc(n);
  memset(p, 2, n);
  g_keep = p;
  free(p);
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 3;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  long steps = (long)(seconds * 1000);
  void** leaked = malloc(sizeof(void*) * (size_t)(steps + 1));
  size_t total = 0;
  for (long i = 0; i < steps; ++i) {
    leaked[i] = import_leak_site(1024);
    total += 1024;
    import_churn(4096);
    next.tv_nsec += 1000000;
    if (next.tv_nsec >= 1000000000) next.tv_nsec -= 1000000000, next.tv_sec += 1;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  printf("leaked %zu\n", total);
  return leaked[0] == NULL;
}
