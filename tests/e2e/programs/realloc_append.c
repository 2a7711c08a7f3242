// Strings built by small appends with realloc, one at a time or several
// by turns: what a sampler charging realloc's growth must count exactly.
// Usage: realloc_append BUFFERS MAX_STEP WAYS [MIN_KIB SPAN_KIB]. Grows
// BUFFERS buffers to MIN_KIB..MIN_KIB+SPAN_KIB (default 16..48 KiB) in
// appends of 1..MAX_STEP bytes, WAYS of them at a time by turns; prints
// the bytes asked for in all (every buffer starts empty).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lw_check.h"

enum { kMaxWays = 8 };

static uint64_t g_seed = 12345;
static uint64_t next_random(void) {
  g_seed ^= g_seed << 13, g_seed ^= g_seed >> 7, g_seed ^= g_seed << 17;
  return g_seed;
}

__attribute__((noinline)) static char* append_bytes(char* p, size_t len, size_t add) {
  char* q = realloc(p, len + add);
  LW_CHECK(q != NULL);
  memset(q + len, (int)(len & 255), add);
  return q;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) return 2;
  long buffers = atol(argv[1]), step = atol(argv[2]), ways = atol(argv[3]);
  long min_kib = argc == 6 ? atol(argv[4]) : 16, span_kib = argc == 6 ? atol(argv[5]) : 32;
  if (buffers <= 0 || step <= 0 || ways <= 0 || ways > kMaxWays || min_kib < 0 || span_kib <= 0) return 2;
  uint64_t total = 0, check = 0;
  for (long b = 0; b < buffers; b += ways) {
    char* buf[kMaxWays] = {0};
    size_t len[kMaxWays] = {0}, target[kMaxWays];
    for (long w = 0; w < ways; ++w) target[w] = (size_t)min_kib * 1024 + next_random() % ((uint64_t)span_kib * 1024);
    for (int busy = 1; busy;) {
      busy = 0;
      for (long w = 0; w < ways; ++w) {
        if (len[w] >= target[w]) continue;
        size_t add = 1 + next_random() % (uint64_t)step;
        if (len[w] + add > target[w]) add = target[w] - len[w];
        buf[w] = append_bytes(buf[w], len[w], add);
        len[w] += add;
        busy = 1;
      }
    }
    for (long w = 0; w < ways; ++w) {
      total += len[w];
      check += (unsigned char)buf[w][len[w] / 2];
      free(buf[w]);
    }
  }
  printf("grown %llu check %llu\n", (unsigned long long)total, (unsigned long long)check);
  return 0;
}
