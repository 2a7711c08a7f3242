// Page marks: the filter free() runs before asking the sampled set. A free
// of a sampled block must never pass it; the marks count blocks per page
// and saturate rather than wrap.
#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>
#include <vector>

#include "shim/record/page_marks.h"

using namespace leakwatch::shim;

namespace {
const void* at(uintptr_t a) { return reinterpret_cast<const void*>(a); }
constexpr uintptr_t kBase = uintptr_t{0x7f0000000000};
constexpr uintptr_t kAlias = uintptr_t{1} << (12 + kPageMarkBits);  // same index, other page
}  // namespace

TEST_CASE("page marks: count blocks per page; neighbours share the mark") {
  const void* a = at(kBase + 0x10);
  const void* b = at(kBase + 0xff0);  // same page
  const void* c = at(kBase + 0x1000);
  CHECK_FALSE(maybe_sampled(a));
  page_mark(a);
  page_mark(b);
  CHECK(maybe_sampled(a));
  CHECK(maybe_sampled(at(kBase + 0x800)));  // a neighbour: slow path, never a miss
  CHECK_FALSE(maybe_sampled(c));
  page_unmark(a);
  CHECK(maybe_sampled(b));  // b is still there
  page_unmark(b);
  CHECK_FALSE(maybe_sampled(a));
  page_unmark(b);  // an extra unmark (a block freed behind our back) stops at zero
  CHECK_FALSE(maybe_sampled(a));
}

TEST_CASE("page marks: aliased pages share a counter") {
  const void* a = at(kBase + 5 * 4096);
  const void* b = at(kBase + 5 * 4096 + kAlias);
  page_mark(a);
  CHECK(maybe_sampled(b));
  page_mark(b);
  page_unmark(a);
  CHECK(maybe_sampled(b));
  page_unmark(b);
  CHECK_FALSE(maybe_sampled(a));
}

TEST_CASE("page marks: a full counter sticks instead of wrapping") {
  const void* p = at(kBase + 9 * 4096);
  for (int i = 0; i < 300; ++i) page_mark(p);
  for (int i = 0; i < 300; ++i) page_unmark(p);
  CHECK(maybe_sampled(p));  // 255 is sticky: some of those 300 were never counted
  const void* q = at(kBase + 11 * 4096);
  page_mark_sticky(q);
  page_unmark(q);
  CHECK(maybe_sampled(q));
}

TEST_CASE("page marks: concurrent marks and unmarks balance") {
  const void* p = at(kBase + 13 * 4096);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        page_mark(p);
        page_unmark(p);
      }
    });
  for (auto& t : ts) t.join();
  CHECK_FALSE(maybe_sampled(p));
}
