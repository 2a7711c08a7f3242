// The set of live sampled allocations: address -> (stack, weights).
//
// This is what free() consults, so its design carries the cost of free:
// - In sparse mode (S >= 64 KiB, the default) free() only calls erase()
//   for pointers in 256-byte granules where a sampled block starts
//   (granule_marks.h). Every other free pays one byte load and a branch.
// - In dense mode (small S, or 1 = every allocation) nearly everything is
//   sampled; every free probes the set.
//
// Layout: fixed-size open hashing in buckets of one cache line (7 keys plus
// a "displaced" counter), with a bounded overflow window. Lookups are
// lock-free and wait-free; inserts and erases use CAS on the key word. No
// tombstones: a probe never stops at an empty slot, it reads the home
// bucket and, only when the counter says some of its keys were displaced,
// the next kWindow buckets. A full window drops the sample (counted; the
// dump says so) rather than growing under a lock.
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
  // reserved, pages are touched only as entries land in them).
  bool init(int log2_buckets);
  bool insert(uintptr_t key, const SampleInfo& info);
  // Removes key if present; fills *info and returns true if it was there.
  bool erase(uintptr_t key, SampleInfo* info);
  bool contains(uintptr_t key) const;
  // Copies the entry for key without removing it.
  bool lookup(uintptr_t key, SampleInfo* info) const;
  // Replaces the entry for key (a block resized in place); the old one goes
  // to *old. Only the thread that owns the block may call it.
  bool update(uintptr_t key, const SampleInfo& info, SampleInfo* old);
  uint64_t size() const {
    uint64_t n = 0;
    for (const auto& l : live_) n += l.n.load(std::memory_order_relaxed);
    return n;
  }
  uint64_t capacity() const { return buckets_ ? (mask_ + 1) * kSlots : 0; }
  // In a fork child: the buckets read as zeros (wiped on fork); so must the count.
  void after_fork_child() {
    for (auto& l : live_) l.n.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr int kSlots = 7;
  static constexpr int kWindow = 8;
  struct alignas(64) Bucket {
    std::atomic<uintptr_t> key[kSlots];
    std::atomic<uint64_t> displaced;  // keys whose home is here but live in the window
    SampleInfo info[kSlots];
  };
  Bucket* home(uintptr_t key) const;
  std::atomic<uintptr_t>* find(uintptr_t key, Bucket** bucket, int* slot) const;

  Bucket* buckets_ = nullptr;
  uint64_t mask_ = 0;
  struct alignas(64) LiveCount {
    std::atomic<uint64_t> n{0};  // modular per shard; the sum is the size
  };
  LiveCount live_[kShards];
};

}  // namespace leakwatch::shim
