/* A service that leaks at a steady rate while it works: every millisecond
 * or so it churns scratch buffers (allocated and freed) and keeps part of
 * what it allocates, so that it leaks RATE bytes per second by the clock.
 * Usage: steady_leak RATE SECONDS [PEAK_MIB]
 *   Prints "ready" at start (flushed), runs SECONDS (0: until stdin closes),
 *   then prints the bytes it leaked and exits normally.
 *   PEAK_MIB: halfway through, also holds PEAK_MIB MiB (written, so
 *   resident) for a moment and gives it back -- the process's high-water
 *   mark, which a dump must catch -- then prints "peak released" (flushed). */
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "lw_check.h"

__attribute__((noinline)) static void* steady_leak_site(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 0x5c, n);
  LW_ESCAPE(p);
  return p;
}

__attribute__((noinline)) static void churn_scratch(uint64_t* seed) {
  for (int i = 0; i < 8; ++i) {
    size_t n = 64 + lw_next(seed) % 8000;
    char* p = malloc(n);
    LW_CHECK(p);
    memset(p, 1, n);
    LW_ESCAPE(p);
    free(p);
  }
}

__attribute__((noinline)) static void hold_peak(size_t mib) {
  char* big = malloc(mib << 20);
  LW_CHECK(big);
  for (size_t i = 0; i < (mib << 20); i += 4096) big[i] = 1;  /* resident */
  LW_ESCAPE(big);
  double until = lw_now_s() + 0.6;
  uint64_t seed = 3;
  while (lw_now_s() < until) churn_scratch(&seed);  /* allocating: the shim looks at memory */
  free(big);
  printf("peak released\n");
  fflush(stdout);
}

int main(int argc, char** argv) {
  LW_CHECK(argc >= 3);
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  size_t peak_mib = argc > 3 ? (size_t)atol(argv[3]) : 0;
  const size_t block = 1000;
  printf("ready\n");
  fflush(stdout);
  double start = lw_now_s(), leaked = 0;
  uint64_t seed = 1;
  int peaked = 0;
  for (;;) {
    double t = lw_now_s() - start;
    if (seconds > 0 && t >= seconds) break;
    if (seconds == 0) {
      struct pollfd pfd = {0, POLLIN, 0};
      if (poll(&pfd, 1, 0) > 0) {
        char buf[64];
        if (read(0, buf, sizeof buf) <= 0) break;
      }
    }
    while (leaked + block <= rate * t) {
      steady_leak_site(block);
      leaked += block;
    }
    churn_scratch(&seed);
    if (peak_mib && !peaked && seconds > 0 && t >= seconds / 2) {
      hold_peak(peak_mib);
      peaked = 1;
    }
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
  printf("leaked %.0f bytes in %.2f s\n", leaked, lw_now_s() - start);
  return 0;
}
