/* A steady service: it allocates and frees all the time, keeps a constant
 * working set, and grows in nothing. Usage: steady SECONDS. Prints
 * "rss T BYTES" at the start and at the end. */
#include <time.h>

#include "lw_check.h"

__attribute__((noinline)) static void* steady_work(size_t n) {
  char* p = malloc(n);
  LW_CHECK(p);
  memset(p, 3, n);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 2);
  double seconds = atof(argv[1]), t0 = lw_now_s();
  enum { kSlots = 4096 };
  static void* slots[kSlots];
  uint64_t seed = 9;
  /* Warm up to the working set first. */
  for (int i = 0; i < kSlots; ++i) slots[i] = steady_work(16 + lw_next(&seed) % 4000);
  printf("rss %.3f %ld\n", lw_now_s() - t0, lw_rss_bytes());
  fflush(stdout);
  while (lw_now_s() - t0 < seconds) {
    for (int k = 0; k < 2000; ++k) {
      int s = (int)(lw_next(&seed) % kSlots);
      free(slots[s]);
      slots[s] = steady_work(16 + lw_next(&seed) % 4000);
    }
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
  printf("rss %.3f %ld\n", lw_now_s() - t0, lw_rss_bytes());
  return 0;
}
