/* 32 blocks of 8 MiB, written, then realloc'd to 100 bytes each: the
 * allocator must get the memory back (RSS falls, malloc_usable_size is
 * small), and the shrunk blocks count as 100 bytes each.
 * Prints the largest usable size and the resident size after the shrink,
 * then waits for stdin to close (so the test can look at it). */
#include <malloc.h>
#include <unistd.h>

#include "lw_check.h"

enum { kBlocks = 32 };
static const size_t kBig = 8u << 20, kSmall = 100;

__attribute__((noinline)) static void* shrink_site(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 0x33, n);  /* resident */
  LW_ESCAPE(p);
  return p;
}

static long rss_kb(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  LW_CHECK(f && fscanf(f, "%ld %ld", &size, &res) == 2);
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
  void* blocks[kBlocks];
  for (int i = 0; i < kBlocks; ++i) blocks[i] = shrink_site(kBig);
  size_t usable_max = 0;
  for (int i = 0; i < kBlocks; ++i) {
    void* q = realloc(blocks[i], kSmall);
    LW_CHECK(q);
    LW_CHECK(((unsigned char*)q)[kSmall - 1] == 0x33);
    blocks[i] = q;
    size_t u = malloc_usable_size(q);
    if (u > usable_max) usable_max = u;
  }
  printf("usable_max %zu rss_kb %ld\n", usable_max, rss_kb());
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
    void* t = malloc(65536);  /* a tick: lets the shim write a dump */
    LW_ESCAPE(t);
    free(t);
  }
  for (int i = 0; i < kBlocks; ++i) LW_ESCAPE(blocks[i]);
  return 0;
}
