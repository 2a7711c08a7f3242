// Granule marks: the filter free() runs before asking the sampled set. A
// free of a sampled block must never pass it; the marks count blocks per
// granule and saturate rather than wrap.
#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>
#include <vector>

#include "shim/record/granule_marks.h"

using namespace leakwatch::shim;

namespace {
const void* at(uintptr_t a) { return reinterpret_cast<const void*>(a); }
constexpr uintptr_t kBase = uintptr_t{0x7f0000000000};
constexpr uintptr_t kGranule = uintptr_t{1} << kGranuleShift;
constexpr uintptr_t kAlias = uintptr_t{1} << (kGranuleShift + kGranuleMarkBits);  // same index, elsewhere
}  // namespace

TEST_CASE("granule marks: count blocks per granule; neighbours in it share the mark") {
  const void* a = at(kBase + 0x10);
  const void* b = at(kBase + kGranule - 0x10);  // same granule
  const void* c = at(kBase + kGranule);         // the next one
  CHECK_FALSE(maybe_sampled(a));
  granule_mark(a);
  granule_mark(b);
  CHECK(maybe_sampled(a));
  CHECK(maybe_sampled(at(kBase + 0x80)));  // a neighbour: slow path, never a miss
  CHECK_FALSE(maybe_sampled(c));
  granule_unmark(a);
  CHECK(maybe_sampled(b));  // b is still there
  granule_unmark(b);
  CHECK_FALSE(maybe_sampled(a));
  granule_unmark(b);  // an extra unmark (a block freed behind our back) stops at zero
  CHECK_FALSE(maybe_sampled(a));
}

TEST_CASE("granule marks: aliased addresses share a counter") {
  const void* a = at(kBase + 5 * kGranule);
  const void* b = at(kBase + 5 * kGranule + kAlias);
  granule_mark(a);
  CHECK(maybe_sampled(b));
  granule_mark(b);
  granule_unmark(a);
  CHECK(maybe_sampled(b));
  granule_unmark(b);
  CHECK_FALSE(maybe_sampled(a));
}

TEST_CASE("granule marks: a full counter sticks instead of wrapping") {
  const void* p = at(kBase + 9 * kGranule);
  for (int i = 0; i < 300; ++i) granule_mark(p);
  for (int i = 0; i < 300; ++i) granule_unmark(p);
  CHECK(maybe_sampled(p));  // 255 is sticky: some of those 300 were never counted
  const void* q = at(kBase + 11 * kGranule);
  granule_mark_sticky(q);
  granule_unmark(q);
  CHECK(maybe_sampled(q));
}

TEST_CASE("granule marks: concurrent marks and unmarks balance") {
  const void* p = at(kBase + 13 * kGranule);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        granule_mark(p);
        granule_unmark(p);
      }
    });
  for (auto& t : ts) t.join();
  CHECK_FALSE(maybe_sampled(p));
}
