// Guarded reads of the process's own memory (shim/runtime/safe_read.h):
// safe_read copies whatever is mapped (PROT_NONE included, through
// /proc/.../mem) and fails on holes; readable() answers "may the program
// dereference this?" -- what libunwind's address validation asks, so a
// PROT_NONE page must say no.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/runtime/safe_read.h"

using namespace leakwatch::shim;

namespace {
uintptr_t at(void* p) { return reinterpret_cast<uintptr_t>(p); }

int open_descriptors() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}
}  // namespace

TEST_CASE("safe_read and readable on readable, PROT_NONE, write-only-less and unmapped pages") {
  const long page = sysconf(_SC_PAGESIZE);
  auto* p = static_cast<char*>(mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  std::memset(p, 'x', 3 * page);
  REQUIRE(mprotect(p + page, page, PROT_NONE) == 0);
  REQUIRE(munmap(p + 2 * page, page) == 0);
  char got[8] = {};
  const int before = open_descriptors();
  for (int scoped = 0; scoped < 2; ++scoped) {
    INFO("inside a SafeReadScope: " << scoped);
    SafeReadScope* scope = scoped ? new SafeReadScope : nullptr;
    CHECK(safe_read(at(p) + 8, got, sizeof got));
    CHECK(std::memcmp(got, "xxxxxxxx", 8) == 0);
    CHECK(readable(at(p)));
    CHECK(readable(at(p) + page - 1));
    // PROT_NONE: the kernel can copy it, the program cannot read it.
    CHECK(safe_read(at(p) + page, got, 1));
    CHECK_FALSE(readable(at(p) + page));
    // A hole: neither.
    CHECK_FALSE(safe_read(at(p) + 2 * page, got, 1));
    CHECK_FALSE(readable(at(p) + 2 * page));
    CHECK_FALSE(readable(0));
    for (int i = 0; i < 70000; ++i) REQUIRE(readable(at(p) + (i % page)));  // the pipe never fills up
    delete scope;
    CHECK(open_descriptors() == before);  // nothing outlives a call or a scope
  }
  munmap(p, 2 * page);
}
