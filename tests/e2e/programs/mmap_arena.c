/* A custom arena that grows with raw mmap: every chunk it maps is written
 * (resident) and kept, at RATE bytes per second; it also maps and unmaps
 * scratch chunks (churn), trims a reservation (a partial munmap, as V8 and
 * the JVM do to align one), and grows one region with mremap.
 * Usage: mmap_arena RATE SECONDS. Prints "ready" and "rss T BYTES" at the
 * start and at the end, then what it kept. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lw_check.h"

enum { kChunk = 256 * 1024 };

__attribute__((noinline)) static void* arena_grow(size_t n) {
  char* p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  LW_CHECK(p != MAP_FAILED);
  for (size_t i = 0; i < n; i += 4096) p[i] = 1;  /* resident */
  LW_ESCAPE(p);
  return p;
}

__attribute__((noinline)) static void scratch_churn(void) {
  char* p = mmap(NULL, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  LW_CHECK(p != MAP_FAILED);
  p[0] = 1;
  LW_ESCAPE(p);
  LW_CHECK(munmap(p, kChunk) == 0);
}

/* Reserve twice the size, trim the unaligned head and tail. */
__attribute__((noinline)) static void* aligned_reserve(size_t n, size_t align) {
  char* p = mmap(NULL, n + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  LW_CHECK(p != MAP_FAILED);
  uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
  if (start > (uintptr_t)p) LW_CHECK(munmap(p, start - (uintptr_t)p) == 0);
  uintptr_t end = start + n;
  if ((uintptr_t)p + n + align > end) LW_CHECK(munmap((void*)end, (uintptr_t)p + n + align - end) == 0);
  return (void*)start;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 3);
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  /* An aligned reservation that stays untouched: address space, not memory. */
  void* reserved = aligned_reserve(64 << 20, 2 << 20);
  LW_ESCAPE(reserved);
  /* A region grown with mremap, written: memory. */
  char* grown = arena_grow(kChunk);
  grown = mremap(grown, kChunk, 4 * kChunk, MREMAP_MAYMOVE);
  LW_CHECK(grown != MAP_FAILED);
  for (size_t i = 0; i < 4 * kChunk; i += 4096) grown[i] = 2;
  printf("ready\n");
  double start = lw_now_s(), kept = 0;
  printf("rss %.3f %ld\n", 0.0, lw_rss_bytes());
  fflush(stdout);
  while (lw_now_s() - start < seconds) {
    while (kept + kChunk <= rate * (lw_now_s() - start)) {
      arena_grow(kChunk);
      kept += kChunk;
    }
    scratch_churn();
    void* m = malloc(100);  /* the program allocates too */
    LW_ESCAPE(m);
    free(m);
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  printf("rss %.3f %ld\n", lw_now_s() - start, lw_rss_bytes());
  printf("kept %.0f bytes in %.2f s\n", kept, lw_now_s() - start);
  return 0;
}
