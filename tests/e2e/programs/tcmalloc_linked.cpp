// Linked with -ltcmalloc (the e2e CMake adds it for this program name):
// malloc/free/new/delete/realloc reach tcmalloc, with the shim in front.
// Proves tcmalloc is in use (tc_version answers, and its count of bytes in
// use moves with our malloc calls) and leaks from tcmalloc_leak_malloc /
// tcmalloc_leak_new.
#include <gperftools/malloc_extension_c.h>
#include <gperftools/tcmalloc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lw_check.h"

// Blocks are freed the way they were allocated (kind[] tracks it); GCC
// cannot see that through the vectors.
#pragma GCC diagnostic ignored "-Wmismatched-dealloc"

extern "C" {
__attribute__((noinline)) void* tcmalloc_leak_malloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  std::memset(p, 1, n);
  LW_ESCAPE(p);
  return p;
}
__attribute__((noinline)) uint64_t* tcmalloc_leak_new(size_t n) {
  auto* p = new uint64_t[n];
  for (size_t i = 0; i < n; ++i) p[i] = i;
  LW_ESCAPE(p);
  return p;
}
}

static size_t in_use() {
  size_t v = 0;
  LW_CHECK(MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &v));
  return v;
}

int main() {
  int major = 0, minor = 0;
  const char* patch = nullptr;
  LW_CHECK(tc_version(&major, &minor, &patch) != nullptr);
  std::printf("tcmalloc answers tc_version\n");

  for (size_t n : {size_t{8} << 20, size_t{20} << 20}) {
    size_t before = in_use();
    void* p = malloc(n);
    LW_CHECK(p);
    std::memset(p, 2, n);
    LW_CHECK(in_use() >= before + n);
    free(p);
    before = in_use();
    char* q = new char[n];
    std::memset(q, 3, n);
    LW_CHECK(in_use() >= before + n);
    delete[] q;
  }
  std::printf("malloc and new reach tcmalloc\n");

  uint64_t h = 0, rng = 6;
  std::vector<void*> keep(256, nullptr);
  std::vector<size_t> size(256, 0);
  std::vector<int> kind(256, 0);
  for (int i = 0; i < 60000; ++i) {
    uint64_t r = lw_next(&rng);
    size_t s = r % 256;
    if (keep[s]) {
      LW_CHECK(lw_verify(keep[s], size[s], s));
      h = lw_mix(h, size[s]);
      if ((r >> 8) % 2 == 0 && kind[s] != 1) {  // grow, then free
        void* g = realloc(keep[s], size[s] * 2 + 10);
        LW_CHECK(g && lw_verify(g, size[s], s));
        free(g);
      } else if (kind[s] == 1) {
        ::operator delete(keep[s]);
      } else {
        free(keep[s]);
      }
      keep[s] = nullptr;
    }
    size_t n = 1 + (r >> 16) % ((r & 0x100000) ? 60000 : 700);
    kind[s] = static_cast<int>((r >> 10) % 3);
    switch (kind[s]) {
      case 0: keep[s] = malloc(n); break;
      case 1: keep[s] = ::operator new(n); break;
      default: keep[s] = calloc(1, n);
    }
    LW_CHECK(keep[s]);
    size[s] = n;
    lw_fill(keep[s], n, s);
  }
  for (size_t s = 0; s < keep.size(); ++s) {
    if (kind[s] == 1)
      ::operator delete(keep[s]);
    else
      free(keep[s]);
  }
  std::vector<void*> leaks;
  for (int i = 0; i < 16; ++i) leaks.push_back(tcmalloc_leak_malloc(4000));
  for (int i = 0; i < 16; ++i) leaks.push_back(tcmalloc_leak_new(500));
  std::printf("tcmalloc workload %016llx, %zu blocks leaked\n", (unsigned long long)h, leaks.size());
  return 0;
}
