// Unit tests for the table of distinct call stacks (shim/record/stack_table.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "shim/record/stack_table.h"

using namespace leakwatch::shim;

namespace {

// A plausible stack: return addresses in a text segment, leaf first.
std::vector<uintptr_t> stack_of(uint64_t seed, uint32_t depth) {
  std::vector<uintptr_t> f(depth);
  std::mt19937_64 gen(seed);
  for (auto& a : f) a = 0x555555554000 + gen() % 0x200000;
  // The leaf encodes the seed, so different seeds never give equal stacks.
  if (depth) f[0] = 0x7f0000000000 + seed * 16;
  return f;
}

bool frames_equal(const StackEntry* e, const std::vector<uintptr_t>& f) {
  return e && e->depth == f.size() && std::memcmp(e->frames, f.data(), f.size() * sizeof(uintptr_t)) == 0;
}

}  // namespace

TEST_CASE("stack table: id 0 is the empty [other] stack", "[stack_table]") {
  StackTable t;
  REQUIRE(t.init(100));
  CHECK(t.count() == 1);
  CHECK_FALSE(t.full());
  StackEntry* other = t.get(0);
  REQUIRE(other != nullptr);
  CHECK(other->id == 0);
  CHECK(other->depth == 0);
  CHECK(other->live_bytes() == 0);
  CHECK(other->total_samples() == 0);
  CHECK(t.get(1) == nullptr);  // beyond count
  // The first real stack gets id 1.
  auto f = stack_of(1, 5);
  CHECK(t.intern(f.data(), 5) == 1);
  CHECK(t.count() == 2);
  // An uninitialised table charges everything to [other].
  StackTable none;
  CHECK(none.intern(f.data(), 5) == 0);
  CHECK(none.get(0) == nullptr);
}

TEST_CASE("stack table: intern deduplicates", "[stack_table]") {
  StackTable t;
  REQUIRE(t.init(1000));
  auto a = stack_of(1, 10);
  auto b = stack_of(2, 10);
  uint32_t ia = t.intern(a.data(), 10);
  uint32_t ib = t.intern(b.data(), 10);
  CHECK(ia != 0);
  CHECK(ib != 0);
  CHECK(ia != ib);
  // Same frames (from a different buffer): same id.
  std::vector<uintptr_t> a2 = a;
  CHECK(t.intern(a2.data(), 10) == ia);
  CHECK(t.intern(b.data(), 10) == ib);
  CHECK(t.count() == 3);
  // A prefix (same frames, smaller depth) and an extension are other stacks.
  uint32_t prefix = t.intern(a.data(), 9);
  CHECK(prefix != ia);
  CHECK(prefix != 0);
  auto longer = a;
  longer.push_back(0x1234);
  uint32_t ilong = t.intern(longer.data(), 11);
  CHECK(ilong != ia);
  CHECK(ilong != prefix);
  // One frame different (the leaf, then the root): another stack.
  auto leaf = a;
  leaf[0] ^= 0x10;
  auto root = a;
  root[9] ^= 0x10;
  uint32_t ileaf = t.intern(leaf.data(), 10), iroot = t.intern(root.data(), 10);
  std::set<uint32_t> ids = {ia, ib, prefix, ilong, ileaf, iroot};
  CHECK(ids.size() == 6);
  CHECK(t.count() == 7);
  // Entries hold their frames and ids.
  CHECK(frames_equal(t.get(ia), a));
  CHECK(frames_equal(t.get(prefix), std::vector<uintptr_t>(a.begin(), a.begin() + 9)));
  CHECK(frames_equal(t.get(ilong), longer));
  CHECK(t.get(ia)->id == ia);
  CHECK(t.get(ia)->hash == hash_frames(a.data(), 10));
  // Maximum depth works.
  auto deep = stack_of(3, 256);
  uint32_t ideep = t.intern(deep.data(), 256);
  CHECK(frames_equal(t.get(ideep), deep));
  CHECK(t.intern(deep.data(), 256) == ideep);
}

TEST_CASE("stack table: many stacks keep distinct dense ids", "[stack_table]") {
  StackTable t;
  REQUIRE(t.init(5000));
  std::map<uint32_t, std::vector<uintptr_t>> by_id;
  for (uint64_t s = 0; s < 4000; ++s) {
    auto f = stack_of(s + 100, 1 + s % 40);
    uint32_t id = t.intern(f.data(), static_cast<uint32_t>(f.size()));
    REQUIRE(id == s + 1);  // dense, in order of first sight
    by_id[id] = f;
  }
  CHECK(t.count() == 4001);
  CHECK_FALSE(t.full());
  for (auto& [id, f] : by_id) {
    REQUIRE(frames_equal(t.get(id), f));
    REQUIRE(t.intern(f.data(), static_cast<uint32_t>(f.size())) == id);
  }
  CHECK(t.memory_bytes() > 0);
}

TEST_CASE("stack table: the index grows with the stacks, not with the cap", "[stack_table]") {
  StackTable t;
  REQUIRE(t.init(1u << 18));
  CHECK(t.index_slots() == 1024);  // one page, not 2 MiB
  std::vector<std::vector<uintptr_t>> seen;
  for (uint64_t s = 0; s < 3000; ++s) {
    seen.push_back(stack_of(s + 7, 1 + s % 50));
    REQUIRE(t.intern(seen.back().data(), static_cast<uint32_t>(seen.back().size())) == s + 1);
    // At most half full after every insert.
    REQUIRE(2 * t.count() <= t.index_slots() + 2);
  }
  CHECK(t.index_slots() == 8192);
  for (uint64_t s = 0; s < seen.size(); ++s)
    REQUIRE(t.intern(seen[s].data(), static_cast<uint32_t>(seen[s].size())) == s + 1);
  CHECK(t.count() == 3001);
}

TEST_CASE("stack table: a full table charges new stacks to [other]", "[stack_table]") {
  StackTable t;
  REQUIRE(t.init(4));  // [other] + 3 stacks
  auto s1 = stack_of(1, 3), s2 = stack_of(2, 3), s3 = stack_of(3, 3), s4 = stack_of(4, 3), s5 = stack_of(5, 7);
  CHECK(t.intern(s1.data(), 3) == 1);
  CHECK(t.intern(s2.data(), 3) == 2);
  CHECK(t.intern(s3.data(), 3) == 3);
  CHECK_FALSE(t.full());
  CHECK(t.intern(s4.data(), 3) == 0);
  CHECK(t.full());
  CHECK(t.intern(s5.data(), 7) == 0);
  CHECK(t.count() == 4);
  // Stacks already in the table keep their ids.
  CHECK(t.intern(s2.data(), 3) == 2);
  CHECK(t.intern(s1.data(), 3) == 1);
  // Counters of [other] work like any other.
  t.on_alloc(0, 1000, 3 * 65536);
  CHECK(t.get(0)->live_bytes() == 1000);
  CHECK(t.get(0)->live_samples() == 1);

  StackTable tiny;
  REQUIRE(tiny.init(1));  // only [other]
  CHECK(tiny.intern(s1.data(), 3) == 0);
  CHECK(tiny.full());
}

TEST_CASE("stack table: on_alloc / on_free counters", "[stack_table]") {
  StackTable t;
  REQUIRE(t.init(16));
  auto f = stack_of(9, 4);
  uint32_t id = t.intern(f.data(), 4);
  // Weights as the recorder stores them: bytes rounded, counts in 1/65536.
  const uint64_t c1 = static_cast<uint64_t>(1.7 * kCountScale), c2 = static_cast<uint64_t>(123.25 * kCountScale);
  t.on_alloc(id, 5000, c1);
  t.on_alloc(id, 700000, c2);
  StackEntry* e = t.get(id);
  CHECK(e->live_bytes() == 705000);
  CHECK(e->alloc_bytes() == 705000);
  CHECK(e->live_count_fp() == c1 + c2);
  CHECK(e->alloc_count_fp() == c1 + c2);
  CHECK(e->live_samples() == 2);
  CHECK(e->total_samples() == 2);
  t.on_free(id, 5000, c1);
  CHECK(e->live_bytes() == 700000);
  CHECK(e->live_count_fp() == c2);
  CHECK(e->live_samples() == 1);
  // Cumulative counters never go down.
  CHECK(e->alloc_bytes() == 705000);
  CHECK(e->alloc_count_fp() == c1 + c2);
  CHECK(e->total_samples() == 2);
  t.on_free(id, 700000, c2);
  CHECK(e->live_bytes() == 0);
  CHECK(e->live_count_fp() == 0);  // fixed point: exactly what was added
  CHECK(e->live_samples() == 0);
  // Other stacks are untouched.
  CHECK(t.get(0)->total_samples() == 0);
  // A free naming an id the table never handed out is ignored.
  t.on_free(12345, 1, 1);
  CHECK(t.count() == 2);
}

TEST_CASE("stack table: concurrent intern agrees on ids", "[stack_table][threads]") {
  StackTable t;
  REQUIRE(t.init(20000));
  constexpr int kThreads = 4;
  constexpr int kShared = 3000;  // every thread interns these, in its own order
  constexpr int kOwn = 1000;     // and these, seen by one thread only
  std::vector<std::vector<uintptr_t>> shared;
  for (int i = 0; i < kShared; ++i) shared.push_back(stack_of(i, 1 + i % 64));
  std::vector<std::vector<uint32_t>> ids(kThreads, std::vector<uint32_t>(kShared));
  std::vector<std::vector<std::pair<uint32_t, std::vector<uintptr_t>>>> own(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::vector<int> order(kShared);
      for (int i = 0; i < kShared; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), std::mt19937(th));
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      for (int k = 0; k < kShared; ++k) {
        int i = order[k];
        ids[th][i] = t.intern(shared[i].data(), static_cast<uint32_t>(shared[i].size()));
        // Count a sample on it too, lock-free.
        t.on_alloc(ids[th][i], 100, 65536);
        if (k % 3 == 0) {
          auto f = stack_of(1000000 + th * kOwn + k / 3, 8);
          own[th].emplace_back(t.intern(f.data(), 8), f);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const uint32_t expected = 1 + kShared + kThreads * kOwn;
  CHECK(t.count() == expected);
  std::set<uint32_t> all;
  for (int i = 0; i < kShared; ++i) {
    for (int th = 1; th < kThreads; ++th) REQUIRE(ids[th][i] == ids[0][i]);
    REQUIRE(ids[0][i] != 0);
    REQUIRE(frames_equal(t.get(ids[0][i]), shared[i]));
    all.insert(ids[0][i]);
    // Four threads each added one sample.
    REQUIRE(t.get(ids[0][i])->total_samples() == kThreads);
    REQUIRE(t.get(ids[0][i])->live_bytes() == 100u * kThreads);
  }
  for (auto& v : own)
    for (auto& [id, f] : v) {
      REQUIRE(id != 0);
      REQUIRE(frames_equal(t.get(id), f));
      all.insert(id);
    }
  CHECK(all.size() == expected - 1);
  CHECK(*all.begin() == 1);
  CHECK(*all.rbegin() == expected - 1);
}

TEST_CASE("stack table: concurrent intern past the cap", "[stack_table][threads]") {
  StackTable t;
  REQUIRE(t.init(500));
  std::vector<std::thread> threads;
  std::atomic<int> zero_ids{0};
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 400; ++i) {
        auto f = stack_of(th * 1000 + i, 6);
        if (t.intern(f.data(), 6) == 0) zero_ids.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(t.count() == 500);
  CHECK(t.full());
  CHECK(zero_ids.load() == 1600 - 499);
  for (uint32_t id = 0; id < t.count(); ++id) {
    REQUIRE(t.get(id) != nullptr);
    REQUIRE(t.get(id)->id == id);
  }
}
