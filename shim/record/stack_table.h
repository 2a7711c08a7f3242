// Distinct call stacks and the estimates attached to each.
//
// A stack is interned once (under a lock, on the sampled-allocation path
// only) and gets a dense id. Its counters are atomics, so a sampled free
// updates them without any lock, and the dump writer reads them without
// stopping anyone. Entries are never removed: the table's memory grows with
// the number of distinct sampled stacks, capped at max_stacks; beyond the
// cap new stacks are charged to id 0, the "[other]" stack with no frames.
//
// Counts are kept in fixed point (1/65536) so that a free subtracts exactly
// what its allocation added.
//
// The counters live apart from the entries, in memory marked
// MADV_WIPEONFORK: a fork child starts counting from zero (its accounting
// is what it allocates after the fork; its sampled set starts empty too),
// and the parent's counter updates after a fork never copy pages shared
// with a child.
//
// Thread-safety: intern() finds a known stack without locking and locks
// only to add a new one; everything else is lock-free.
// Never calls malloc (memory from mmap).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/shard.h"
#include "shim/runtime/spinlock.h"

namespace leakwatch::shim {

constexpr double kCountScale = 65536.0;

// One thread shard of a stack's counters (shim/runtime/shard.h). A shard
// can go "negative" (a block freed by another thread than the one that
// allocated it): the counters are modular, only their sum means anything.
struct alignas(64) StackCounters {
  std::atomic<uint64_t> live_bytes{0};
  std::atomic<uint64_t> live_count_fp{0};
  std::atomic<uint64_t> alloc_bytes{0};
  std::atomic<uint64_t> alloc_count_fp{0};
  std::atomic<uint64_t> live_samples{0};
  std::atomic<uint64_t> total_samples{0};
};

// What a stack allocated: the malloc family, or anonymous memory mapped
// directly (mmap). The same frames with another kind are another stack.
enum StackKind : uint32_t { kMallocStack = 0, kMmapStack = 1 };

struct StackEntry {
  uint64_t hash;
  uint32_t id;
  uint32_t depth;
  uint32_t kind;         // StackKind
  uint32_t stride;       // counters between its shards: the table's max_stacks, kept here (the
                         // reserved word) so an entry sums itself without its table
  StackCounters* shard;  // its counters in shard 0; shard i is shard[i * stride]
  uintptr_t frames[];    // depth return addresses, leaf first

  // Sums over the shards (relaxed: a dump is a moment, not a transaction).
  uint64_t live_bytes() const { return sum(&StackCounters::live_bytes); }
  uint64_t live_count_fp() const { return sum(&StackCounters::live_count_fp); }
  uint64_t alloc_bytes() const { return sum(&StackCounters::alloc_bytes); }
  uint64_t alloc_count_fp() const { return sum(&StackCounters::alloc_count_fp); }
  uint64_t live_samples() const { return sum(&StackCounters::live_samples); }
  uint64_t total_samples() const { return sum(&StackCounters::total_samples); }

 private:
  uint64_t sum(std::atomic<uint64_t> StackCounters::*field) const {
    uint64_t s = 0;
    for (unsigned i = 0; i < kShards; ++i) s += (shard[std::size_t{i} * stride].*field).load(std::memory_order_relaxed);
    return s;
  }
};

class StackTable {
 public:
  bool init(uint32_t max_stacks);
  // Address space init() reserves for max_stacks stacks (the entries'
  // own memory comes later, from the arena, as stacks are added).
  static std::size_t reserve_bytes(uint32_t max_stacks) {
    // The index grows by doubling and keeps its old tables: at most twice
    // the largest.
    return (sizeof(StackEntry*) + sizeof(StackCounters) * kShards) * max_stacks +
           2 * index_bytes(index_capacity(max_stacks));
  }
  // Gives the reservation back (an init that failed further on).
  void release();
  uint32_t capacity() const { return max_stacks_; }
  // Returns the id of the stack, adding it if new (0 when full).
  uint32_t intern(const uintptr_t* frames, uint32_t depth, uint32_t kind = kMallocStack);
  StackEntry* get(uint32_t id) const { return id < count() ? entries_[id] : nullptr; }
  uint32_t count() const { return count_.load(std::memory_order_acquire); }
  bool full() const { return full_.load(std::memory_order_relaxed); }

  void on_alloc(uint32_t id, uint64_t bytes_w, uint64_t count_fp);
  void on_free(uint32_t id, uint64_t bytes_w, uint64_t count_fp);
  // A sampled block resized by realloc: its live weight changes; only the
  // growth counts as newly allocated bytes.
  void on_resize(uint32_t id, uint64_t old_bytes_w, uint64_t old_count_fp, uint64_t new_bytes_w,
                 uint64_t new_count_fp);

  // In a fork child: a thread that was adding a stack at the instant of
  // fork does not exist here. Entries are published in an order that leaves
  // the table whole at any instant (entry, count, index); only the lock and
  // the arena's current chunk need repair.
  void after_fork_child() {
    if (!lock_.held()) return;
    lock_.reset();
    arena_.abandon();
  }
  std::size_t memory_bytes() const { return arena_.used(); }
  // Slots of the newest hash index (it grows with the stacks: tests).
  uint64_t index_slots() const { return index_.load(std::memory_order_acquire)->mask + 1; }

 private:
  // The hash index from frames to ids: open addressing over ids+1 (0 =
  // empty), at most half full. It starts at one page and doubles, rather
  // than being sized for max_stacks at once: hashes scatter the stacks over
  // the whole table, so a table for 2^18 stacks had a page fault and 4 KiB
  // of memory for almost every new stack (2 MiB for a few thousand stacks).
  // A grown table is published whole; readers of an older one only miss
  // the newer stacks, and a miss is settled under the lock. Old tables are
  // kept (a reader may still be in one): at most as large as the newest.
  struct Index {
    uint64_t mask;
    std::atomic<uint32_t> slots[];
  };
  static constexpr uint64_t kFirstIndexSlots = 1024;
  static constexpr int kMaxIndexes = 32;
  static uint64_t index_capacity(uint32_t max_stacks) {
    uint64_t cap = 1;
    while (cap < uint64_t{max_stacks} * 2) cap <<= 1;
    return cap;
  }
  static std::size_t index_bytes(uint64_t slots) { return sizeof(Index) + sizeof(uint32_t) * slots; }
  StackEntry* make(const uintptr_t* frames, uint32_t depth, uint32_t kind, uint64_t hash, uint32_t id);
  // Probes an index; returns the id or -1, and the first empty slot seen.
  int64_t probe(const Index* index, const uintptr_t* frames, uint32_t depth, uint32_t kind, uint64_t hash,
                uint64_t* empty_slot) const;
  // The next index (twice `from`, or the first) holding ids 1..count-1;
  // under the lock, before it is published.
  Index* grow(const Index* from, uint32_t count);

  SpinLock lock_;
  Arena arena_;
  StackEntry** entries_ = nullptr;
  // kShards x max_stacks, shard-major: a thread's counters for all stacks
  // are together, so a program with one thread touches a quarter of the
  // pages it would if each stack's four shards were side by side.
  StackCounters* counters_ = nullptr;
  StackCounters& counters(uint32_t id) { return counters_[std::size_t{thread_shard()} * max_stacks_ + id]; }
  std::atomic<Index*> index_{nullptr};  // the newest
  Index* indexes_[kMaxIndexes] = {};    // every one made, for release()
  int nindexes_ = 0;
  uint32_t max_stacks_ = 0;
  std::atomic<uint32_t> count_{0};
  std::atomic<bool> full_{false};
};

uint64_t hash_frames(const uintptr_t* frames, uint32_t depth);

}  // namespace leakwatch::shim
