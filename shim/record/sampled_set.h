// The set of live sampled allocations: address -> (stack, weights).
//
// This is what free() consults, so its design carries the cost of free:
// - In sparse mode (S >= 64 KiB, the default) free() only calls erase()
//   for pointers in 256-byte granules where a sampled block starts
//   (granule_marks.h). Every other free pays one byte load and a branch.
// - In dense mode (small S, or 1 = every allocation) nearly everything is
//   sampled; every free probes the set.
//
// Layout: open hashing in buckets (7 keys plus "displaced" counters on one
// cache line, their payloads after it), with a bounded overflow window.
// Lookups are lock-free and wait-free; inserts and erases use CAS on the key
// word. No tombstones: a probe never stops at an empty slot, it reads the
// home bucket and, only where the counters say some of its keys were
// displaced, those of the next kWindow buckets that hold them (one counter
// byte per window bucket: a miss in a crowded table reads ~2 lines a
// level, not 9 -- dense mode checks every new address for a stale record,
// so misses are as common as allocations). A full window drops the sample
// (counted; the dump says so) rather than growing under a lock.
//
// Growth by levels, without moving anything: the table is reserved at its
// largest (2^max buckets) but used from 2^start. New keys have their homes
// in the buckets the current level L added ([2^(L-1), 2^L); the first
// 2^start at the start level); when the set is half full, or a window is
// full, the level goes up and new keys go to the next, twice larger range.
// A key stays where it was inserted, so a lookup tries its home at every
// level from the current one down to start (max - start + 1 buckets at
// most). At the last level a key whose window is full tries the older
// levels' homes, so the whole table stays usable. (Homes that overlapped,
// the low L bits at level L, piled every
// level's keys on the first buckets: full windows at 40% load.) Why: the
// pages of a reserved table are touched as keys land in them, and hashing
// spreads even a few hundred samples over all of them -- at 2^15 buckets
// (8 MiB) that was ~2 page faults per sample until the table was touched
// through: 4,000 faults and 1.17x the bare interposer on the churn
// benchmark, against 1.03x from a 2^10 table. Memory now follows the live
// samples.
//
// Correctness rests on the program: an address is inserted before malloc
// returns it and erased before the real free, so lookups never race with
// the insert or erase of the same key.
//
// Thread-safety: all operations from any thread, lock-free. Async-signal-
// safe. Never allocates after init().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/runtime/shard.h"

namespace leakwatch::shim {

struct SampleInfo {
  uint32_t stack;     // stack table id
  float count_w;      // 1 / p(n)
  uint64_t bytes_w;   // n / p(n), rounded
  uint64_t size;      // bytes requested
};

class SampledSet {
 public:
  // `log2_buckets`: capacity is 7 << log2_buckets entries (memory is
  // reserved, pages are touched only as entries land in them). Homes start
  // within the first 2^log2_start buckets (capped at log2_buckets) and
  // double as the set fills. `huge`: levels past the start on huge pages
  // (dense mode, where they are touched all over).
  bool init(int log2_buckets, int log2_start = 64, bool huge = false);
  // Address space init() reserves for 2^log2_buckets buckets.
  static std::size_t reserve_bytes(int log2_buckets) { return sizeof(Bucket) << log2_buckets; }
  // Gives the reservation back (an init that failed further on); the set
  // is as before init().
  void release();
  bool insert(uintptr_t key, const SampleInfo& info);
  // Removes key if present; fills *info and returns true if it was there.
  bool erase(uintptr_t key, SampleInfo* info);
  bool contains(uintptr_t key) const;
  // Copies the entry for key without removing it.
  bool lookup(uintptr_t key, SampleInfo* info) const;
  // The entry for key (null if absent), for the thread that owns the block
  // to read and, when the block is resized in place, to replace(): one
  // probe where lookup() and a second search would take two.
  SampleInfo* entry(uintptr_t key);
  static void replace(SampleInfo* entry, const SampleInfo& info) {
    *entry = info;
    std::atomic_thread_fence(std::memory_order_release);
  }
  uint64_t size() const {
    uint64_t n = 0;
    for (const auto& l : live_) n += l.n.load(std::memory_order_relaxed);
    return n;
  }
  uint64_t capacity() const { return buckets_ ? (mask_ + 1) * kSlots : 0; }
  // log2 of the buckets new keys' homes are spread over.
  int level() const { return level_.load(std::memory_order_acquire); }
  // In a fork child: the buckets read as zeros (wiped on fork); so must the count.
  void after_fork_child() {
    for (auto& l : live_) l.n.store(0, std::memory_order_relaxed);
    level_.store(start_level_, std::memory_order_relaxed);
  }

 private:
  static constexpr int kSlots = 7;
  static constexpr int kWindow = 8;
  struct alignas(64) Bucket {
    std::atomic<uintptr_t> key[kSlots];
    // Byte w-1: keys whose home is here living in the bucket w after it
    // (at most kSlots, so a byte never carries into the next).
    std::atomic<uint64_t> displaced;
    SampleInfo info[kSlots];
    uint8_t offset[kSlots];  // 0: at its home; w: displaced from the bucket w before
  };
  static_assert(kWindow <= 8 && kSlots < 256, "one counter byte per window bucket");
  static constexpr uint64_t displaced_one(int w) { return uint64_t{1} << (8 * (w - 1)); }
  static uint64_t hash(uintptr_t key);
  Bucket* home(uint64_t h, int level) const;
  std::atomic<uintptr_t>* find_from(Bucket* home, uintptr_t key, Bucket** bucket, int* slot) const;
  std::atomic<uintptr_t>* find(uintptr_t key, Bucket** bucket, int* slot) const;
  bool insert_at(Bucket* home, uintptr_t key, const SampleInfo& info);
  void open_level(int level);
  void maybe_grow(int level);

  Bucket* buckets_ = nullptr;
  uint64_t mask_ = 0;
  int start_level_ = 0, max_level_ = 0;
  bool huge_ = false;
  std::atomic<int> level_{0};
  struct alignas(64) LiveCount {
    std::atomic<uint64_t> n{0};  // modular per shard; the sum is the size
  };
  LiveCount live_[kShards];
};

}  // namespace leakwatch::shim
