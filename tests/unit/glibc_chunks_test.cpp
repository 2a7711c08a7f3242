// realloc's hook reads the old size from glibc's chunk header instead of
// calling malloc_usable_size(). The two must agree on every kind of block
// glibc hands out, and finding out that the allocator is glibc's must not
// change how glibc's heap behaves.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <thread>
#include <vector>

#include "shim/record/real_functions.h"

using namespace leakwatch::shim;

namespace {
// Whether malloc here is glibc's own: not under a sanitizer, whose
// allocator keeps no glibc headers (the shim must then not read them).
bool libc_malloc() {
  Dl_info info{};
  void* m = dlsym(RTLD_NEXT, "malloc");
  return m && dladdr(m, &info) && info.dli_fname && std::strstr(info.dli_fname, "/libc.so") != nullptr;
}

bool glibc_heap() { return resolve_real_functions() && g_glibc_chunks; }

// Sizes across tcache, fastbins, small and large bins, and mmapped chunks.
std::vector<std::size_t> sizes() {
  std::vector<std::size_t> v;
  for (std::size_t n = 0; n <= 2048; n += 7) v.push_back(n);
  for (std::size_t n = 4096; n <= (std::size_t{8} << 20); n = n * 3 / 2 + 13) v.push_back(n);
  return v;
}

void check_block(void* p) {
  REQUIRE(p != nullptr);
  CHECK(glibc_usable_size(p) == malloc_usable_size(p));
}
}  // namespace

// First (Catch runs cases in declaration order): the cases below free
// mmapped blocks, which raises the threshold themselves.
TEST_CASE("glibc chunks: found for glibc, and finding out leaves the mmap threshold alone") {
  REQUIRE(resolve_real_functions());
  // Found exactly when malloc is libc's (under ASan it is not: no headers).
  REQUIRE(g_glibc_chunks == libc_malloc());
  if (!g_glibc_chunks) return;
  // Freeing an mmapped block would have raised glibc's dynamic threshold
  // to its size: a block just past the default 128 KiB must still be
  // mmapped (flag bit 1).
  void* p = std::malloc(132 * 1024);
  REQUIRE(p != nullptr);
  CHECK((static_cast<std::size_t*>(p)[-1] & 2) != 0);
  std::free(p);
}

TEST_CASE("glibc chunks: the header agrees with malloc_usable_size for every kind of block") {
  if (!glibc_heap()) return;
  for (std::size_t n : sizes()) {
    INFO("size " << n);
    void* a = std::malloc(n);
    check_block(a);
    void* c = std::calloc(1, n);
    check_block(c);
    void* m = nullptr;
    REQUIRE(posix_memalign(&m, 4096, n) == 0);
    check_block(m);
    void* g = std::realloc(std::malloc(16), n + 1);  // grown (moved or in place)
    check_block(g);
    std::free(a), std::free(c), std::free(m), std::free(g);
  }
}

TEST_CASE("glibc chunks: blocks of another thread's arena (the non-main-arena bit)") {
  if (!glibc_heap()) return;
  std::vector<void*> blocks;
  std::thread t([&] {
    for (std::size_t n : sizes()) blocks.push_back(std::malloc(n));
  });
  t.join();
  for (void* p : blocks) check_block(p);
  for (void* p : blocks) std::free(p);
}
