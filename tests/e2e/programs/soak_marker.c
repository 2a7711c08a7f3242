/* Fills its heap with a marker string and leaks it, through every
 * allocation entry point, then waits: a test checks that no dump contains
 * the marker (dumps hold addresses, sizes and names, never heap contents).
 * The marker exists only in the heap: it is decoded at run time from
 * bytes that do not contain it, and it is not in argv or the environment.
 * Usage: soak_marker MARKER_XOR_KEY < commands
 *   Prints "ready" once the heap is filled, then reads lines until end of
 *   input: "more" fills and leaks another round (prints "more ok"); "tick"
 *   allocates and frees 64 KiB, silently (the shim writes dumps from
 *   allocations). At end of input prints "bye" and exits normally (final dump). */
#include <unistd.h>

#include "lw_check.h"

/* "LWMARK:heap-secret-9f1c2e:" XOR key, so the binary does not hold it. */
static const unsigned char kEncoded[] = {0x26, 0x3d, 0x27, 0x2b, 0x38, 0x21, 0x50, 0x02, 0x0f, 0x0b, 0x1a, 0x47,
                                         0x19, 0x0f, 0x09, 0x18, 0x0f, 0x1e, 0x47, 0x53, 0x0c, 0x5b, 0x09, 0x58,
                                         0x0f, 0x50};
static char g_marker[sizeof kEncoded + 1];

static void fill(void* p, size_t n) {
  size_t m = sizeof kEncoded;
  for (size_t i = 0; i < n; ++i) ((char*)p)[i] = g_marker[i % m];
}

static void* g_keep[4096];
static int g_kept;

static void keep(void* p) {
  LW_CHECK(p);
  if (g_kept < 4096) g_keep[g_kept++] = p;
  LW_ESCAPE(p);
}

__attribute__((noinline)) static void fill_round(uint64_t seed) {
  uint64_t rng = seed;
  for (int i = 0; i < 200; ++i) {
    size_t n = 16 + lw_next(&rng) % 9000;
    void* p = malloc(n);
    fill(p, n);
    keep(p);
  }
  for (int i = 0; i < 40; ++i) {
    size_t n = 1 + lw_next(&rng) % 5000;
    char* p = calloc(n, 3);
    fill(p, n * 3);
    keep(p);
  }
  for (int i = 0; i < 40; ++i) {
    char* p = malloc(64);
    fill(p, 64);
    size_t n = 64 + lw_next(&rng) % 200000;
    p = realloc(p, n); /* grows: may move into a sampled block, marker and all */
    LW_CHECK(p);
    fill(p, n);
    keep(p);
  }
  for (int i = 0; i < 20; ++i) {
    void* p = NULL;
    size_t n = 4096 + lw_next(&rng) % 300000;
    LW_CHECK(posix_memalign(&p, 64, n) == 0);
    fill(p, n);
    keep(p);
  }
  for (int i = 0; i < 10; ++i) {
    size_t n = 1 << (12 + i % 9); /* 4 KiB .. 1 MiB: page-aligned, mmap'd ones too */
    void* p = aligned_alloc(4096, n);
    fill(p, n);
    keep(p);
  }
}

int main(int argc, char** argv) {
  unsigned key = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 0x6a;
  for (size_t i = 0; i < sizeof kEncoded; ++i) g_marker[i] = (char)(kEncoded[i] ^ key);
  g_marker[sizeof kEncoded] = '\0';
  fill_round(1);
  printf("ready\n");
  fflush(stdout);
  char line[64];
  uint64_t round = 1;
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "tick", 4) == 0) {
      void* t = malloc(65536);
      LW_CHECK(t);
      LW_ESCAPE(t);
      free(t);
      continue;
    }
    if (strncmp(line, "more", 4) == 0) {
      fill_round(++round);
      printf("more ok\n");
      fflush(stdout);
    }
  }
  printf("bye %d\n", g_kept);
  return 0;
}
