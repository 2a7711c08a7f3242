// Resident bytes of a range (shim/runtime/proc_memory.h): the PAGEMAP_SCAN
// answer (runs of present pages) and the per-page pagemap entries must
// agree with each other and with the pages the test touched -- on a large
// sparse reservation, with holes, unaligned ends, more runs than one call's
// buffer holds, and transparent huge pages.
#include <catch2/catch.hpp>

#include <cstdint>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/runtime/proc_memory.h"

using namespace leakwatch::shim;

namespace {
constexpr uintptr_t kPage = 4096;
uintptr_t at(void* p) { return reinterpret_cast<uintptr_t>(p); }
}  // namespace

TEST_CASE("resident bytes of a sparse 8 GiB reservation, both ways") {
  REQUIRE(sysconf(_SC_PAGESIZE) == static_cast<long>(kPage));
  const std::size_t reserve = std::size_t{8} << 30;
  auto* base = static_cast<char*>(
      mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  REQUIRE(base != MAP_FAILED);
  // Commit 64 MiB in the middle (what a JVM does with its reserved heap),
  // touch every third page, and unmap a hole inside it.
  char* heap = base + (std::size_t{3} << 30);
  const std::size_t committed = 64u << 20;
  REQUIRE(mprotect(heap, committed, PROT_READ | PROT_WRITE) == 0);
  REQUIRE(madvise(heap, committed, MADV_NOHUGEPAGE) == 0);  // page-exact counts
  uint64_t touched = 0;
  for (std::size_t off = 0; off < committed; off += 3 * kPage) {
    static_cast<volatile char*>(heap)[off] = 1;
    ++touched;
  }
  char* hole = heap + (16u << 20);
  const std::size_t hole_len = 1u << 20;
  for (std::size_t off = 0; off < hole_len; off += kPage)
    if ((at(hole) + off - at(heap)) % (3 * kPage) == 0) --touched;
  REQUIRE(munmap(hole, hole_len) == 0);

  const ResidentPages pagemap;
  REQUIRE(pagemap.ok());
  uint64_t buf[512];
  const uintptr_t lo = at(base), hi = at(base) + reserve;
  const uint64_t by_entries = pagemap.entry_bytes(lo, hi, buf, 512);
  CHECK(by_entries == touched * kPage);
  CHECK(pagemap.bytes(lo, hi, buf, 512) == touched * kPage);

  uint64_t by_scan = 0;
  if (!pagemap.scan_bytes(lo, hi, buf, 512, &by_scan)) {
    WARN("this kernel has no PAGEMAP_SCAN (before 6.7): only the per-page way was checked");
  } else {
    CHECK(by_scan == touched * kPage);
    // 21,000 runs through a buffer of 7 regions: the walk resumes where the kernel stopped.
    uint64_t small = 0;
    REQUIRE(pagemap.scan_bytes(lo, hi, buf, 21, &small));
    CHECK(small == touched * kPage);
    // Unaligned ends count the pages they touch, as the entries do.
    const uintptr_t a = at(heap) + 5, b = at(heap) + 10 * kPage + 7;
    uint64_t part = 0;
    REQUIRE(pagemap.scan_bytes(a, b, buf, 512, &part));
    CHECK(part == pagemap.entry_bytes(a, b, buf, 512));
    CHECK(part == 4 * kPage);  // pages 0, 3, 6, 9
    // Nothing mapped at all.
    REQUIRE(pagemap.scan_bytes(at(hole), at(hole) + hole_len, buf, 512, &part));
    CHECK(part == 0);
  }
  munmap(base, reserve);
}

TEST_CASE("transparent huge pages count as the bytes they back, both ways") {
  const std::size_t len = 8u << 20;
  auto* p = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  madvise(p, len, MADV_HUGEPAGE);  // may be refused (THP off): both ways must agree either way
  for (std::size_t off = 0; off < len; off += 512 * kPage) static_cast<volatile char*>(p)[off] = 1;
  const ResidentPages pagemap;
  uint64_t buf[64];
  const uint64_t by_entries = pagemap.entry_bytes(at(p), at(p) + len, buf, 64);
  CHECK(by_entries >= 4 * kPage);
  uint64_t by_scan = 0;
  if (pagemap.scan_bytes(at(p), at(p) + len, buf, 64, &by_scan)) CHECK(by_scan == by_entries);
  munmap(p, len);
}
