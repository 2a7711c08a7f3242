// Linked with -ljemalloc (the e2e CMake adds it for this program name):
// malloc/free/new/delete/realloc all reach jemalloc, with the shim in
// front of it. Proves jemalloc is in use (its mallctl answers, and its
// per-thread byte counter moves with our malloc calls), mixes in
// and leaks from jemalloc_leak_malloc / jemalloc_leak_new.
// Usage: jemalloc_linked [MODE]
//   plain   (default) malloc/calloc/realloc/free and new/delete only
//   api     also jemalloc's own mallocx/dallocx, which bypass the shim:
//           blocks from mallocx are freed or grown with free/realloc and
//           blocks from malloc are freed with dallocx (all valid jemalloc use)
//   sized   also sdallocx(p, size, 0) on blocks from malloc (valid jemalloc use)
#include <jemalloc/jemalloc.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "lw_check.h"

// Blocks are freed the way they were allocated (kind[] tracks it); GCC
// cannot see that through the vectors.
#pragma GCC diagnostic ignored "-Wmismatched-dealloc"

extern "C" {
__attribute__((noinline)) void* jemalloc_leak_malloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  std::memset(p, 1, n);
  LW_ESCAPE(p);
  return p;
}
__attribute__((noinline)) uint64_t* jemalloc_leak_new(size_t n) {
  auto* p = new uint64_t[n];
  for (size_t i = 0; i < n; ++i) p[i] = i;
  LW_ESCAPE(p);
  return p;
}
}

static uint64_t thread_allocated() {
  uint64_t v = 0;
  size_t len = sizeof v;
  LW_CHECK(mallctl("thread.allocated", &v, &len, nullptr, 0) == 0);
  return v;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "plain";
  const bool api = !std::strcmp(mode, "api"), sized = !std::strcmp(mode, "sized");
  LW_CHECK(api || sized || !std::strcmp(mode, "plain"));
  const char* version = nullptr;
  size_t len = sizeof version;
  LW_CHECK(mallctl("version", &version, &len, nullptr, 0) == 0);
  LW_CHECK(version && *version);
  std::printf("jemalloc answers mallctl\n");

  // malloc goes to jemalloc: its counter of bytes this thread allocated
  // grows by at least what we asked for.
  for (size_t n : {size_t{1} << 20, size_t{3} << 20, size_t{100000}}) {
    uint64_t before = thread_allocated();
    void* p = malloc(n);
    LW_CHECK(p);
    std::memset(p, 2, n);
    uint64_t after = thread_allocated();
    LW_CHECK(after - before >= n);
    free(p);
    before = thread_allocated();
    char* q = new char[n];
    std::memset(q, 3, n);
    after = thread_allocated();
    LW_CHECK(after - before >= n);
    delete[] q;
  }
  std::printf("malloc and new reach jemalloc\n");

  uint64_t h = 0, rng = 5;
  std::vector<void*> keep(256, nullptr);
  std::vector<size_t> size(256, 0);
  std::vector<int> kind(256, 0);
  for (int i = 0; i < 60000; ++i) {
    uint64_t r = lw_next(&rng);
    size_t s = r % 256;
    if (keep[s]) {
      LW_CHECK(lw_verify(keep[s], size[s], s));
      h = lw_mix(h, size[s]);
      int how = static_cast<int>((r >> 8) % 4);
      if (how == 2 && kind[s] != 1) {  // grow, then free
        void* g = realloc(keep[s], size[s] * 2 + 10);
        LW_CHECK(g && lw_verify(g, size[s], s));
        free(g);
      } else if (kind[s] == 1) {
        ::operator delete(keep[s]);
      } else if (how == 1 && api) {
        dallocx(keep[s], 0);  // jemalloc's free, past the shim
      } else if (how == 3 && sized) {
        sdallocx(keep[s], size[s], 0);  // jemalloc's sized free, past the shim
      } else {
        free(keep[s]);
      }
      keep[s] = nullptr;
    }
    size_t n = 1 + (r >> 16) % ((r & 0x100000) ? 60000 : 700);
    kind[s] = static_cast<int>((r >> 10) % 4);
    switch (kind[s]) {
      case 0: keep[s] = malloc(n); break;
      case 1: keep[s] = ::operator new(n); break;
      case 2: keep[s] = calloc(1, n); break;
      default: keep[s] = api ? mallocx(n, 0) : malloc(n);  // jemalloc's own allocation, past the shim
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
  for (int i = 0; i < 16; ++i) leaks.push_back(jemalloc_leak_malloc(4000));
  for (int i = 0; i < 16; ++i) leaks.push_back(jemalloc_leak_new(500));
  std::printf("jemalloc workload %016llx, %zu blocks leaked\n", (unsigned long long)h, leaks.size());
  return 0;
}
