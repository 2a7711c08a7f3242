/* Live heap flat, resident memory growing: each round allocates a block a
 * little larger than any before it (so it comes from the top of the heap),
 * writes it, and shrinks the previous round's block to 24 bytes with
 * realloc -- glibc shrinks in place, so the freed tail is a hole between
 * that small pin and the new block: too small for any later block, never
 * given back. The heap grows by a block per round; the program holds one
 * block and the pins.
 * Usage: fragment ROUNDS_PER_SECOND SECONDS. Prints "rss T BYTES" at the
 * start and at the end. */
#include <time.h>
#include <unistd.h>

#include "lw_check.h"

__attribute__((noinline)) static void* fragment_block(size_t n) {
  char* p = malloc(n);
  LW_CHECK(p);
  memset(p, 7, n);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 3);
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  double t0 = lw_now_s();
  printf("rss %.3f %ld\n", 0.0, lw_rss_bytes());
  fflush(stdout);
  long round = 0;
  void* prev = fragment_block(32768);
  for (;;) {
    double t = lw_now_s() - t0;
    if (t >= seconds) break;
    while (round < (long)(rate * t)) {
      void* next = fragment_block(32768 + (size_t)(round + 1) * 64);
      void* pin = realloc(prev, 24);  /* in place: the tail is a hole before `next` */
      LW_CHECK(pin);
      LW_ESCAPE(pin);
      prev = next;
      ++round;
    }
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  printf("rss %.3f %ld\n", lw_now_s() - t0, lw_rss_bytes());
  printf("rounds %ld\n", round);
  return 0;
}
