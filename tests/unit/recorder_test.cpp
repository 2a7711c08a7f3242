// Unit tests for the hooks' slow paths (shim/record/recorder.h), without a
// preload: the recorder forwards to this process's real allocator, records
// sampled blocks with their stacks, and keeps the per-stack counters equal
// to what is live. LEAKWATCH_SAMPLE_BYTES=1 (every allocation, weight 1),
// so every expected count is exact.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "shim/record/granule_marks.h"
#include "shim/record/real_functions.h"
#include "shim/record/recorder.h"
#include "shim/runtime/config.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/lifecycle.h"
#include "shim/sample/sampler.h"
#include "shim/stack/capture.h"

using namespace leakwatch::shim;

namespace {

void setup() {
  static bool done = false;
  if (done) return;
  done = true;
  ConfigWarnings w;
  parse_config([](const char* name) -> const char* {
    return std::strcmp(name, "LEAKWATCH_SAMPLE_BYTES") == 0 ? "1" : nullptr;
  }, &g_config, &w);
  REQUIRE(w.count == 0);
  REQUIRE(g_config.sample_bytes == 1);
  REQUIRE(resolve_real_functions());
  REQUIRE(recorder_init(recorder_sizes(g_config.sample_bytes)));
  capture_init();
  g_state.store(kEnabled, std::memory_order_release);
}

const StackEntry* stack_of(void* p) {
  SampleInfo info{};
  if (!g_samples.lookup(reinterpret_cast<uintptr_t>(p), &info)) return nullptr;
  return g_stacks.get(info.stack);
}

__attribute__((noinline)) void* allocate_here(std::size_t n) {
  void* p = alloc_slow(Op::kMalloc, n, 0);
  asm volatile("" : : "r"(p) : "memory");  // keeps the call (and this frame)
  return p;
}

}  // namespace

TEST_CASE("recorder: a sampled allocation is recorded with its stack and forgotten at free", "[recorder]") {
  setup();
  void* p = allocate_here(100);
  REQUIRE(p != nullptr);
  std::memset(p, 1, 100);
  CHECK(maybe_sampled(p));  // free() will look
  const StackEntry* e = stack_of(p);
  REQUIRE(e != nullptr);
  CHECK(e->depth > 0);
  const uint64_t live = e->live_bytes(), samples = e->live_samples(), allocated = e->alloc_bytes();
  CHECK(live >= 100);
  // Another block from the same place: the same stack, counted once more.
  void* q = allocate_here(50);
  REQUIRE(stack_of(q) == e);
  CHECK(e->live_bytes() == live + 50);
  CHECK(e->live_samples() == samples + 1);
  free_slow(q);
  CHECK(e->live_bytes() == live);
  CHECK(e->alloc_bytes() == allocated + 50);  // allocated bytes only grow
  CHECK_FALSE(g_samples.contains(reinterpret_cast<uintptr_t>(q)));
  free_slow(p);
  CHECK(e->live_bytes() == live - 100);
  CHECK(e->live_samples() == samples - 1);
}

TEST_CASE("recorder: realloc keeps the record and charges only the growth", "[recorder]") {
  setup();
  void* p = allocate_here(64);
  const StackEntry* e = stack_of(p);
  REQUIRE(e != nullptr);
  std::memset(p, 7, 64);
  const uint64_t live = e->live_bytes(), allocated = e->alloc_bytes();
  // Grown far past any slack: the block moves (or grows in place), its
  // record follows it, its contents are kept.
  void* q = realloc_slow(p, 1 << 20);
  REQUIRE(q != nullptr);
  CHECK(stack_of(q) == e);
  if (q != p) CHECK_FALSE(g_samples.contains(reinterpret_cast<uintptr_t>(p)));
  for (int i = 0; i < 64; ++i) REQUIRE(static_cast<unsigned char*>(q)[i] == 7);
  CHECK(e->live_bytes() == live - 64 + (1 << 20));
  CHECK(e->alloc_bytes() == allocated - 64 + (1 << 20));
  // A shrink gives memory back to the allocator; nothing is allocated.
  void* r = realloc_slow(q, 32);
  REQUIRE(r != nullptr);
  CHECK(stack_of(r) == e);
  CHECK(e->live_bytes() == live - 64 + 32);
  CHECK(e->alloc_bytes() == allocated - 64 + (1 << 20));
  free_slow(r);
  CHECK(e->live_bytes() == live - 64);
  // A shrink by less than glibc's smallest chunk stays where it is (glibc
  // keeps those bytes in the block too), its record updated in place.
  void* s = allocate_here(200);
  const std::size_t usable = g_real.malloc_usable_size(s);
  REQUIRE(usable >= 200);
  void* same = realloc_slow(s, usable - 20);
  CHECK(same == s);
  CHECK(stack_of(s) == e);
  CHECK(e->live_bytes() == live - 64 + (usable - 20));
  void* back = realloc_slow(s, usable);  // and grows back into it
  CHECK(back == s);
  CHECK(e->live_bytes() == live - 64 + usable);
  free_slow(s);
  CHECK(e->live_bytes() == live - 64);
}

TEST_CASE("recorder: the allocation ops keep their contracts", "[recorder]") {
  setup();
  SECTION("calloc zeroes") {
    auto* p = static_cast<unsigned char*>(alloc_slow(Op::kCalloc, 4096, 0));
    REQUIRE(p != nullptr);
    for (int i = 0; i < 4096; ++i) REQUIRE(p[i] == 0);
    CHECK(stack_of(p) != nullptr);
    free_slow(p);
  }
  SECTION("aligned ops align, and are recorded") {
    for (Op op : {Op::kMemalign, Op::kAlignedAlloc, Op::kNewAligned}) {
      void* p = alloc_slow(op, 100, 256);
      REQUIRE(p != nullptr);
      CHECK(reinterpret_cast<uintptr_t>(p) % 256 == 0);
      CHECK(stack_of(p) != nullptr);
      free_slow(p);
    }
    void* v = alloc_slow(Op::kValloc, 10, 0);
    REQUIRE(v != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(v) % 4096 == 0);
    free_slow(v);
    void* out = nullptr;
    CHECK(posix_memalign_slow(&out, 64, 1000) == 0);
    CHECK(reinterpret_cast<uintptr_t>(out) % 64 == 0);
    CHECK(stack_of(out) != nullptr);
    free_slow(out);
  }
#if !defined(__SANITIZE_ADDRESS__)  // ASan's allocator aborts on a bad alignment instead of failing
  SECTION("a bad alignment fails as the allocator makes it fail, unrecorded") {
    errno = 0;
    void* p = alloc_slow(Op::kMemalign, 100, 3);
    void* q = g_real.memalign(3, 100);
    CHECK((p == nullptr) == (q == nullptr));
    if (p) free_slow(p);
    if (q) g_real.free(q);
    void* out = nullptr;
    CHECK(posix_memalign_slow(&out, 3, 100) == EINVAL);
  }
#endif
  SECTION("pvalloc's rounding cannot wrap") {
    errno = 0;
    CHECK(alloc_slow(Op::kPvalloc, SIZE_MAX - 10, 0) == nullptr);
    CHECK(errno == ENOMEM);
  }
}

TEST_CASE("recorder: inside the shim (re-entry) an allocation is forwarded, not recorded", "[recorder]") {
  setup();
  void* p;
  {
    Guard g;
    p = alloc_slow(Op::kMalloc, 200, 0);
  }
  REQUIRE(p != nullptr);
  CHECK_FALSE(g_samples.contains(reinterpret_cast<uintptr_t>(p)));
  free_slow(p);  // a plain block: to the allocator, nothing else
}

TEST_CASE("recorder: many live blocks, all accounted, all forgotten", "[recorder]") {
  setup();
  const uint64_t before = g_samples.size();
  std::vector<void*> blocks;
  for (int i = 0; i < 20000; ++i) blocks.push_back(allocate_here(16 + i % 300));
  const StackEntry* e = stack_of(blocks.front());
  REQUIRE(e != nullptr);
  uint64_t expect = 0;
  for (int i = 0; i < 20000; ++i) expect += 16 + i % 300;
  CHECK(g_samples.size() == before + 20000);
  CHECK(e->live_bytes() >= expect);
  const uint64_t live = e->live_bytes();
  for (void* b : blocks) free_slow(b);
  CHECK(g_samples.size() == before);
  CHECK(e->live_bytes() == live - expect);
}
