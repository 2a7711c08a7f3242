// Buffers grown by realloc the way string builders and vectors grow them:
// small appends (8..71 bytes at a time) up to 4..67 KiB, and doubling.
// Usage: realloc_growth [MODE=realloc] [BUFFERS=60000] [STEP=0]
//   realloc      grow each buffer by realloc (the timed workload)
//   malloc       malloc each buffer at its final size at once: the same
//                bytes as realloc's growth, in one call
//   malloc-each  malloc every intermediate size (copy, free the old one):
//                the bytes a sampler that charged realloc its whole new
//                size would count
// STEP > 0: appends of 1..STEP bytes instead of 8..71 (byte-at-a-time
// builders: the case where growth inside the allocator's slack matters).
// The three modes write the same bytes and print the same checksum; the
// suite compares leakwatch's sample counts across them.
#include <math.h>
#include <string.h>

#include "common.h"

enum { kKeep = 64 };

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "realloc";
  long buffers = wl_arg(argc, argv, 2, 60000);
  long step = wl_arg(argc, argv, 3, 0);
  int m = strcmp(mode, "malloc") == 0 ? 1 : strcmp(mode, "malloc-each") == 0 ? 2 : 0;
  uint64_t seed = 7, sum = 0, grown = 0, calls = 0;
  // What a sampler charging growth should see at the default mean of 512 KiB:
  // a buffer of final size n is sampled with probability 1 - exp(-n / S).
  double expected = 0;
  char* keep[kKeep] = {0};
  for (long b = 0; b < buffers; ++b) {
    uint64_t r = wl_next(&seed);
    size_t target = 4096 + (r & 65535);
    int doubling = (r >> 20) & 1;
    // The sequence of sizes is decided first, so every mode sees the same.
    char* p = NULL;
    size_t len = 0;
    if (m == 1) p = malloc(target);
    while (len < target) {
      size_t next = doubling ? (len ? len * 2 : 16) : len + (step > 0 ? 1 + wl_next(&seed) % (uint64_t)step : 8 + (wl_next(&seed) & 63));
      if (next > target) next = target;
      if (m == 0) {
        p = realloc(p, next);
      } else if (m == 2) {
        char* q = malloc(next);
        if (len) memcpy(q, p, len);
        free(p);
        p = q;
      }
      ++calls;
      memset(p + len, (int)(len & 255), next - len);
      len = next;
    }
    grown += len;
    expected += -expm1(-(double)len / 524288.0);
    sum += (unsigned char)p[len / 2] + len;
    free(keep[b % kKeep]);
    keep[b % kKeep] = p;
  }
  for (int i = 0; i < kKeep; ++i) free(keep[i]);
  fprintf(stderr, "realloc_growth %s: %llu buffers, %llu calls, %llu bytes grown, %.0f samples expected at 512 KiB\n",
          mode, (unsigned long long)buffers, (unsigned long long)calls, (unsigned long long)grown, expected);
  wl_checksum(sum);
  return 0;
}
