// A large live heap of small objects: MiB mebibytes requested in blocks
// of 32..96 bytes (linked, touched), then a short churn over them so the
// heap is in use, then exit. For the shim's own-memory measurement: peak
// RSS with and without the shim, divided by the live heap.
// Usage: live_heap [MIB=1024]
#include "common.h"

struct obj { struct obj* next; uint64_t v; };

int main(int argc, char** argv) {
  long mib = wl_arg(argc, argv, 1, 1024);
  uint64_t want = (uint64_t)mib << 20, have = 0, seed = 5, sum = 0, count = 0;
  struct obj* head = NULL;
  while (have < want) {
    size_t n = 32 + (wl_next(&seed) & 63);
    struct obj* o = malloc(n);
    o->next = head;
    o->v = n;
    head = o;
    have += n;
    ++count;
  }
  for (struct obj* o = head; o; o = o->next) sum += o->v;
  fprintf(stderr, "live_heap: %llu objects, %llu bytes requested\n", (unsigned long long)count,
          (unsigned long long)have);
  wl_checksum(sum);
  return 0;
}
