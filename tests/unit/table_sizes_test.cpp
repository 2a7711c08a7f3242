// The recorder's tables under an address-space budget (a host's
// RLIMIT_AS): shrinking terminates, each step reserves less, and an init
// followed by a release leaves nothing mapped -- what a start-up that fails
// half-way relies on.
#include <catch2/catch.hpp>

#include "shim/record/recorder.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/lifecycle.h"

using namespace leakwatch::shim;

TEST_CASE("table sizes shrink step by step down to the smallest") {
  for (uint64_t sample_bytes : {uint64_t{1}, uint64_t{4096}, uint64_t{524288}}) {
    RecorderSizes s = recorder_sizes(sample_bytes);
    CHECK(s.dense == (sample_bytes < kDenseBelow));
    std::size_t before = recorder_reserve_bytes(s);
    int steps = 0;
    while (recorder_shrink(&s)) {
      const std::size_t now = recorder_reserve_bytes(s);
      CHECK(now < before);
      before = now;
      REQUIRE(++steps < 64);
    }
    CHECK(s.max_stacks == RecorderSizes::kMinStacks);
    CHECK(s.log2_buckets == RecorderSizes::kMinLog2Buckets);
    CHECK(recorder_reserve_bytes(s) < (4u << 20));
  }
  // Every allocation sampled reserves the most (2^21 buckets).
  CHECK(recorder_reserve_bytes(recorder_sizes(1)) > 4 * recorder_reserve_bytes(recorder_sizes(524288)));
}

TEST_CASE("init then release gives every reservation back") {
  const std::size_t before = mapped_bytes();
  for (uint64_t sample_bytes : {uint64_t{1}, uint64_t{524288}}) {
    RecorderSizes s = recorder_sizes(sample_bytes);
    recorder_shrink(&s);
    REQUIRE(recorder_init(s));
    // The reservation bounds what the tables map, then and as they grow
    // (the stack index doubles as stacks are added).
    CHECK(mapped_bytes() > before);
    CHECK(mapped_bytes() <= before + recorder_reserve_bytes(s));
    // The tables work while they exist.
    uintptr_t frames[2] = {0x1000, 0x2000};
    CHECK(g_stacks.intern(frames, 2) == 1);
    for (uintptr_t i = 2; i < 5000; ++i) {
      frames[1] = 0x2000 + i;
      REQUIRE(g_stacks.intern(frames, 2) == i);
    }
    CHECK(g_stacks.index_slots() >= 10000);
    CHECK(mapped_bytes() <= before + recorder_reserve_bytes(s));
    CHECK(g_stacks.capacity() == s.max_stacks);
    recorder_release();
    CHECK(mapped_bytes() == before);
    CHECK(g_stacks.capacity() == 0);
    CHECK(g_stacks.count() == 0);
  }
}
