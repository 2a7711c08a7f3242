/* A long-running process driven by stdin, for tests that watch it while it
 * runs. Prints "ready" (flushed) once started, then reads commands, one a
 * line, until end of input:
 *   leak N   leak N bytes from idle_leak (and print "leaked N")
 *   ping     print "pong"
 *   cd DIR   chdir(DIR) (print "cd ok" or "cd failed")
 *   tick     allocate and free 64 KiB, print nothing: the shim has no thread
 *            and writes its dumps from allocations, so a test that waits for
 *            a dump of this otherwise idle process sends ticks
 * At end of input prints "bye" and a checksum of what it leaked. Between
 * commands it is blocked in read(): no allocation, no CPU. */
#include <unistd.h>

#include "lw_check.h"

__attribute__((noinline)) void* idle_leak(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 0x5a, n);
  LW_ESCAPE(p);
  return p;
}

int main(void) {
  void* start = malloc(5000);  /* something live from the start */
  memset(start, 1, 5000);
  printf("ready\n");
  fflush(stdout);
  char line[256];
  uint64_t h = 0;
  while (fgets(line, sizeof line, stdin)) {
    size_t n;
    if (sscanf(line, "leak %zu", &n) == 1) {
      idle_leak(n);
      h = lw_mix(h, n);
      printf("leaked %zu\n", n);
    } else if (!strncmp(line, "cd ", 3)) {
      line[strcspn(line, "\n")] = '\0';
      printf("cd %s\n", chdir(line + 3) == 0 ? "ok" : "failed");
    } else if (!strncmp(line, "tick", 4)) {
      void* t = malloc(65536);
      LW_CHECK(t);
      memset(t, 7, 65536);
      LW_ESCAPE(t);
      free(t);
      continue;
    } else if (!strncmp(line, "ping", 4)) {
      printf("pong\n");
    } else {
      printf("unknown command\n");
    }
    fflush(stdout);
  }
  free(start);
  printf("bye %016llx\n", (unsigned long long)h);
  return 0;
}
