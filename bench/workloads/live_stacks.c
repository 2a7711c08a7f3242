// A service holding live allocations from exactly N distinct call paths
// (20..30 frames deep): path P allocates one 4 MiB block (never touched,
// so it costs address space, not RSS) and keeps it. At the default
// sampling rate a 4 MiB block is sampled with probability 1 - e^-8, so
// every path is a live stack in the dump. Then the process idles for
// SECONDS so periodic dumps are written too.
// Usage: live_stacks [PATHS=1000] [SECONDS=0]
#include <unistd.h>

#include "common.h"
#include "paths.h"

static void* g_keep[65536];
static int g_kept;

static uint64_t leaf(uint32_t path) {
  void* p = malloc(4u << 20);
  g_keep[g_kept++] = p;
  return p != NULL;
}

int main(int argc, char** argv) {
  long paths = wl_arg(argc, argv, 1, 1000);
  double seconds = argc > 2 ? atof(argv[2]) : 0;
  if (paths < 1 || paths > 4096) return 2;
  wl_paths_init(leaf);
  uint64_t sum = 0;
  for (long p = 0; p < paths; ++p) sum += wl_walk((uint32_t)p, 20 + (int)(p % 11));
  if (seconds > 0) usleep((useconds_t)(seconds * 1e6));
  wl_checksum(sum);
  return 0;
}
