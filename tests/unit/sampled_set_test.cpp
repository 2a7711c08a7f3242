// Unit tests for the lock-free set of live sampled allocations
// (shim/record/sampled_set.h).
//
// Tiny tables (init(0..3): 1..8 buckets of 7 slots) make collisions and
// displacement certain. With at most 8 buckets the overflow window of 8
// buckets covers the whole table, so there an insert may fail only when
// every slot is taken; that gives an exact model to check against.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "shim/record/sampled_set.h"

using namespace leakwatch::shim;

namespace {

constexpr uintptr_t kPage = 4096;

SampleInfo info_for(uintptr_t key) {
  return SampleInfo{static_cast<uint32_t>(key >> 12), static_cast<float>(key % 1000) + 0.5f, key * 3 + 1,
                    key / 4096 + 17};
}

bool same(const SampleInfo& a, const SampleInfo& b) {
  return a.stack == b.stack && a.count_w == b.count_w && a.bytes_w == b.bytes_w && a.size == b.size;
}

// Page-aligned keys in a heap-like region, as real sampled blocks are.
uintptr_t page_key(uint64_t i) { return uintptr_t{0x7f3a00000000} + i * kPage; }

}  // namespace

TEST_CASE("sampled set: empty and uninitialised sets", "[sampled_set]") {
  SampledSet none;
  SampleInfo info{};
  CHECK(none.capacity() == 0);
  CHECK_FALSE(none.insert(page_key(1), info_for(1)));
  CHECK_FALSE(none.contains(page_key(1)));
  CHECK_FALSE(none.lookup(page_key(1), &info));
  CHECK_FALSE(none.erase(page_key(1), &info));
  CHECK(none.size() == 0);

  SampledSet s;
  REQUIRE(s.init(10));
  CHECK(s.capacity() == 7u << 10);
  CHECK(s.size() == 0);
  CHECK_FALSE(s.contains(page_key(1)));
  CHECK_FALSE(s.erase(page_key(1), &info));
  // Key 0 is the empty marker and can never be inserted.
  CHECK_FALSE(s.insert(0, info_for(0)));
  CHECK(s.size() == 0);
}

TEST_CASE("sampled set: insert, lookup, erase", "[sampled_set]") {
  SampledSet s;
  REQUIRE(s.init(12));
  const int n = 2000;
  for (int i = 1; i <= n; ++i) REQUIRE(s.insert(page_key(i), info_for(page_key(i))));
  CHECK(s.size() == static_cast<uint64_t>(n));
  for (int i = 1; i <= n; ++i) {
    SampleInfo got{};
    REQUIRE(s.contains(page_key(i)));
    REQUIRE(s.lookup(page_key(i), &got));
    REQUIRE(same(got, info_for(page_key(i))));
  }
  // Neighbours of sampled keys are not in the set.
  for (int i = 1; i <= n; ++i) {
    REQUIRE_FALSE(s.contains(page_key(i) + 16));
    REQUIRE_FALSE(s.contains(page_key(i) - 16));
  }
  CHECK_FALSE(s.contains(page_key(n + 1)));
  // Erase the odd ones; lookups of the even ones are unaffected.
  for (int i = 1; i <= n; i += 2) {
    SampleInfo got{};
    REQUIRE(s.erase(page_key(i), &got));
    REQUIRE(same(got, info_for(page_key(i))));
  }
  CHECK(s.size() == static_cast<uint64_t>(n / 2));
  for (int i = 1; i <= n; ++i) REQUIRE(s.contains(page_key(i)) == (i % 2 == 0));
  // Erase with a null info pointer.
  for (int i = 2; i <= n; i += 2) REQUIRE(s.erase(page_key(i), nullptr));
  CHECK(s.size() == 0);
}

TEST_CASE("sampled set: erase of an absent key, double erase, reinsert", "[sampled_set]") {
  SampledSet s;
  REQUIRE(s.init(4));
  SampleInfo got{};
  REQUIRE(s.insert(page_key(1), info_for(1)));
  CHECK_FALSE(s.erase(page_key(2), &got));  // absent key, set not empty
  CHECK(s.size() == 1);
  CHECK(s.erase(page_key(1), &got));
  CHECK(same(got, info_for(1)));
  CHECK_FALSE(s.erase(page_key(1), &got));  // double free in the host
  CHECK(s.size() == 0);
  // Reinsert the same address with new data (malloc reused it).
  SampleInfo fresh{99, 2.0f, 1234, 56};
  REQUIRE(s.insert(page_key(1), fresh));
  CHECK(s.lookup(page_key(1), &got));
  CHECK(same(got, fresh));
  CHECK(s.size() == 1);
}

TEST_CASE("sampled set: displaced entries in tiny tables behave like a map", "[sampled_set]") {
  // Random insert/erase against std::map. With 1..8 buckets every key has a
  // home bucket that fills up fast, so many keys live displaced.
  for (int log2 = 0; log2 <= 3; ++log2) {
    for (int round = 0; round < 20; ++round) {
      SampledSet s;
      REQUIRE(s.init(log2));
      const uint64_t cap = s.capacity();
      REQUIRE(cap == 7u << log2);
      std::map<uintptr_t, SampleInfo> model;
      std::mt19937_64 gen(1000 * log2 + round);
      std::vector<uintptr_t> universe;
      for (uint64_t i = 0; i < 3 * cap; ++i) universe.push_back(page_key(gen() % 1000000 + 1));
      for (int step = 0; step < 4000; ++step) {
        uintptr_t k = universe[gen() % universe.size()];
        INFO("log2=" << log2 << " round=" << round << " step=" << step << " key=" << k << " size=" << model.size());
        if (gen() % 2) {
          if (model.count(k)) continue;  // the program never inserts a live address twice
          SampleInfo in = info_for(k + step);
          bool ok = s.insert(k, in);
          // The window covers the whole table: insert fails only when full.
          REQUIRE(ok == (model.size() < cap));
          if (ok) model[k] = in;
        } else {
          SampleInfo got{};
          bool ok = s.erase(k, &got);
          REQUIRE(ok == (model.count(k) == 1));
          if (ok) {
            REQUIRE(same(got, model[k]));
            model.erase(k);
          }
        }
        REQUIRE(s.size() == model.size());
        if (step % 64 == 0) {
          for (uintptr_t u : universe) {
            SampleInfo got{};
            bool there = s.lookup(u, &got);
            REQUIRE(there == (model.count(u) == 1));
            if (there) REQUIRE(same(got, model[u]));
          }
        }
      }
    }
  }
}

TEST_CASE("sampled set: a full window drops the insert and keeps the rest intact", "[sampled_set]") {
  SECTION("one bucket: 7 entries, the 8th is refused") {
    SampledSet s;
    REQUIRE(s.init(0));
    for (int i = 1; i <= 7; ++i) REQUIRE(s.insert(page_key(i), info_for(i)));
    CHECK_FALSE(s.insert(page_key(8), info_for(8)));
    CHECK(s.size() == 7);
    CHECK_FALSE(s.contains(page_key(8)));
    for (int i = 1; i <= 7; ++i) CHECK(s.contains(page_key(i)));
    // Space freed: insert works again.
    REQUIRE(s.erase(page_key(3), nullptr));
    CHECK(s.insert(page_key(8), info_for(8)));
    CHECK(s.contains(page_key(8)));
  }
  SECTION("two buckets: all 14 slots usable through displacement, the 15th refused") {
    SampledSet s;
    REQUIRE(s.init(1));
    for (int i = 1; i <= 14; ++i) REQUIRE(s.insert(page_key(i), info_for(i)));
    CHECK_FALSE(s.insert(page_key(15), info_for(15)));
    CHECK(s.size() == 14);
    for (int i = 1; i <= 14; ++i) {
      SampleInfo got{};
      REQUIRE(s.lookup(page_key(i), &got));
      CHECK(same(got, info_for(i)));
    }
    // Empty it completely, then it takes 14 again (no leaked displacement state).
    for (int i = 1; i <= 14; ++i) REQUIRE(s.erase(page_key(i), nullptr));
    CHECK(s.size() == 0);
    for (int i = 101; i <= 114; ++i) REQUIRE(s.insert(page_key(i), info_for(i)));
    CHECK_FALSE(s.insert(page_key(115), info_for(115)));
  }
  SECTION("a large table: a key whose home and window are full is refused, others are not") {
    // 2^12 buckets; pile keys into the table until the first refusal, then
    // check every accepted key is still found and nothing refused is.
    SampledSet s;
    REQUIRE(s.init(12));
    std::vector<uintptr_t> in, out;
    for (uint64_t i = 1; out.empty() && i < 1000000; ++i) {
      uintptr_t k = page_key(i);
      (s.insert(k, info_for(k)) ? in : out).push_back(k);
    }
    REQUIRE(!out.empty());
    CHECK(s.size() == in.size());
    INFO("first refusal at load " << static_cast<double>(in.size()) / s.capacity());
    CHECK(in.size() > s.capacity() / 2);  // the window absorbs ordinary clustering
    for (uintptr_t k : in) REQUIRE(s.contains(k));
    for (uintptr_t k : out) REQUIRE_FALSE(s.contains(k));
  }
}

TEST_CASE("sampled set: concurrent insert/erase from 4 threads with disjoint keys", "[sampled_set][threads]") {
  // A moderately small table (2^8 buckets, 1792 slots) so that threads
  // collide in buckets and windows; each thread keeps up to 300 keys live
  // (1200 in all, 67% load), inserting and erasing in random order. Started
  // at 2^3 buckets, the homes' level goes up while the threads race.
  const int start = GENERATE(8, 3);
  INFO("start level " << start);
  SampledSet s;
  REQUIRE(s.init(8, start));
  constexpr int kThreads = 4;
  constexpr int kKeysPerThread = 20000;
  constexpr int kLive = 300;
  std::atomic<int> go{0};
  std::vector<uint64_t> inserted(kThreads), erased_ok(kThreads), refused(kThreads), errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 gen(t + 1);
      std::vector<uintptr_t> live;
      // Interleaved page-aligned ranges: thread t owns pages t, t+4, t+8, ...
      auto key = [t](int i) { return page_key(static_cast<uint64_t>(i) * kThreads + t + 1); };
      go.fetch_add(1);
      while (go.load() < kThreads) {
      }
      for (int i = 0; i < kKeysPerThread; ++i) {
        uintptr_t k = key(i);
        if (s.insert(k, info_for(k))) {
          ++inserted[t];
          live.push_back(k);
        } else {
          ++refused[t];
          if (s.contains(k)) ++errors[t];
        }
        while (live.size() > kLive || (i == kKeysPerThread - 1 && !live.empty())) {
          std::size_t j = gen() % live.size();
          uintptr_t e = live[j];
          live[j] = live.back();
          live.pop_back();
          SampleInfo got{};
          // Found exactly once: the first erase succeeds with our data, a
          // second one fails.
          if (!s.lookup(e, &got) || !same(got, info_for(e))) ++errors[t];
          if (s.erase(e, &got) && same(got, info_for(e)))
            ++erased_ok[t];
          else
            ++errors[t];
          if (s.erase(e, &got)) ++errors[t];
          if (s.contains(e)) ++errors[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t total_in = 0;
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t << ": inserted " << inserted[t] << ", erased " << erased_ok[t] << ", refused " << refused[t]);
    CHECK(errors[t] == 0);
    CHECK(erased_ok[t] == inserted[t]);
    total_in += inserted[t];
  }
  CHECK(total_in > kThreads * kKeysPerThread * 9 / 10);
  CHECK(s.size() == 0);
  // Nothing is left behind anywhere (one unrelated live key, so that
  // contains() really probes instead of answering from size() == 0).
  const uintptr_t sentinel = page_key(10000000);
  REQUIRE(s.insert(sentinel, info_for(sentinel)));
  for (int i = 0; i < kKeysPerThread * kThreads + 8; ++i) REQUIRE_FALSE(s.contains(page_key(i)));
  REQUIRE(s.erase(sentinel, nullptr));
  // And the table is fully usable again: the displacement counters went
  // back to zero with the entries (a leaked counter only costs probes, but
  // a table that refuses inserts when empty would be a bug).
  for (int i = 1; i <= 1000; ++i) REQUIRE(s.insert(page_key(i), info_for(i)));
}

TEST_CASE("sampled set: homes spread over more buckets only as the set fills", "[sampled_set]") {
  // Also with the levels past the start on huge pages (dense mode): a hint
  // that must change nothing the set does.
  const bool huge = GENERATE(false, true);
  INFO("huge=" << huge);
  SampledSet s;
  REQUIRE(s.init(15, 10, huge));
  CHECK(s.level() == 10);
  // Half of 7 << 10 slots, and the level stays.
  std::vector<uintptr_t> keys;
  for (uint64_t i = 1; keys.size() < 3000; ++i) {
    keys.push_back(page_key(i * 3));
    REQUIRE(s.insert(keys.back(), info_for(keys.back())));
  }
  CHECK(s.level() == 10);
  for (uint64_t i = 1; keys.size() < 20000; ++i) {
    keys.push_back(page_key(i * 3 + 1));
    REQUIRE(s.insert(keys.back(), info_for(keys.back())));
  }
  // 20000 keys: half full at 2^12 buckets (14336 slots) -> level 13.
  CHECK(s.level() == 13);
  // Keys inserted at every level are found, and each erased exactly once.
  for (uintptr_t k : keys) {
    SampleInfo got{};
    REQUIRE(s.lookup(k, &got));
    REQUIRE(same(got, info_for(k)));
  }
  for (uintptr_t k : keys) REQUIRE(s.erase(k, nullptr));
  for (uintptr_t k : keys) REQUIRE_FALSE(s.contains(k));
  CHECK(s.size() == 0);
  // A fork child starts over at the first level.
  s.after_fork_child();
  CHECK(s.level() == 10);
}

TEST_CASE("sampled set: concurrent readers see stable entries while writers churn", "[sampled_set][threads]") {
  SampledSet s;
  REQUIRE(s.init(6));  // 448 slots
  // Stable keys, inserted first; 3 writers churn other keys around them.
  std::vector<uintptr_t> stable;
  for (int i = 1; i <= 100; ++i) {
    stable.push_back(page_key(i * 7));
    REQUIRE(s.insert(stable.back(), info_for(stable.back())));
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reader_errors{0}, reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      // Churn only once the reader reads: on a loaded machine it could
      // otherwise start after the writers are done (and check nothing).
      while (reads.load() == 0) std::this_thread::yield();
      for (int round = 0; round < 300; ++round) {
        std::vector<uintptr_t> mine;
        for (int i = 0; i < 80; ++i) {
          uintptr_t k = page_key(100000 + (round * 80 + i) * 3 + w);
          if (s.insert(k, info_for(k))) mine.push_back(k);
        }
        for (uintptr_t k : mine) s.erase(k, nullptr);
      }
    });
  }
  std::thread reader([&] {
    while (!stop.load()) {
      for (uintptr_t k : stable) {
        SampleInfo got{};
        if (!s.lookup(k, &got) || !same(got, info_for(k))) reader_errors.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  reader.join();
  CHECK(reads.load() > 0);
  CHECK(reader_errors.load() == 0);
  CHECK(s.size() == stable.size());
}

TEST_CASE("sampled set: entry() finds displaced keys and replace() changes only that one", "[sampled_set]") {
  SampledSet s;
  REQUIRE(s.init(1));  // 2 buckets: most keys are displaced
  CHECK(s.entry(page_key(1)) == nullptr);  // empty
  for (uint64_t i = 1; i <= 12; ++i) REQUIRE(s.insert(page_key(i), info_for(i)));
  CHECK(s.entry(page_key(13)) == nullptr);  // absent, set not empty
  for (uint64_t i = 1; i <= 12; ++i) {
    SampleInfo* e = s.entry(page_key(i));
    REQUIRE(e != nullptr);
    CHECK(same(*e, info_for(i)));
  }
  const SampleInfo grown{7, 3.25f, 999, 4096};
  SampledSet::replace(s.entry(page_key(5)), grown);
  SampleInfo got;
  for (uint64_t i = 1; i <= 12; ++i) {
    REQUIRE(s.lookup(page_key(i), &got));
    CHECK(same(got, i == 5 ? grown : info_for(i)));
  }
  CHECK(s.size() == 12);
  CHECK(s.erase(page_key(5), &got));
  CHECK(same(got, grown));
  CHECK(s.entry(page_key(5)) == nullptr);
}
