// The sampled anonymous mappings: memory a program maps itself with mmap
// (a runtime's heap -- V8, the JVM, CPython's arenas, ERTS carriers -- or a
// custom arena), sampled by bytes like allocations and kept as address
// ranges, since munmap and mremap may cut any part of a mapping.
//
// Each range carries the stack and the weight it was sampled with. What a
// dump reports for it is the part that is resident (mincore, at dump
// time), scaled by that weight: reserved address space is not memory.
//
// Layout: a sorted array of non-overlapping ranges, in memory wiped on
// fork (a child counts its own mappings from the fork on). munmap and
// mremap are system calls; a spinlock around the table costs nothing next
// to them.
//
// Thread-safety: callers hold lock() around every call but empty().
// Never allocates after init().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/runtime/spinlock.h"

namespace leakwatch::shim {

struct Mapping {
  uintptr_t start, end;  // page-aligned
  uint32_t stack;
  float count_w;         // 1 / p(length sampled with)
  uint64_t bytes_w;      // (end - start) * count_w, rounded: what the stack's live bytes hold for it
  uint64_t count_fp;     // what its live count holds for it (on one piece when split)
};

class MappingSet {
 public:
  bool init(int capacity);
  static std::size_t reserve_bytes(int capacity) { return 64 + sizeof(Mapping) * static_cast<std::size_t>(capacity); }
  // Gives the reservation back (an init that failed further on).
  void release();
  SpinLock& lock() { return lock_; }
  bool empty() const { return count_->load(std::memory_order_relaxed) == 0; }

  // A change to the table's estimates for one stack: the caller applies it
  // to the stack table (old bytes/count -> new bytes/count; new = 0: gone).
  struct Change {
    uint32_t stack;
    uint64_t old_bytes, old_count_fp, new_bytes, new_count_fp;
  };
  using ChangeFn = void (*)(const Change& c, void* ctx);

  // Removes [start, end) from every range it overlaps (trimming or
  // splitting them); reports each change.
  void remove(uintptr_t start, uintptr_t end, ChangeFn fn, void* ctx);
  // Adds a range (the caller removed any overlap first). False when full.
  bool add(const Mapping& m);
  // The range containing addr, if any.
  bool find(uintptr_t addr, Mapping* out) const;
  // Copies up to cap ranges; returns how many.
  int copy(Mapping* out, int cap) const;
  int size() const { return count_->load(std::memory_order_relaxed); }

  // In a fork child: the table reads as empty (wiped on fork); the lock may
  // have been held by a thread that is not there.
  void after_fork_child() { lock_.reset(); }

 private:
  int lower_bound(uintptr_t addr) const;  // first range with end > addr
  void erase_at(int i);
  bool insert_at(int i, const Mapping& m);

  // Before init() (an allocator that maps memory while the process is still
  // loading, ahead of our constructor) the table reads as empty.
  static inline std::atomic<int> no_ranges_{0};

  SpinLock lock_;
  std::atomic<int>* count_ = &no_ranges_;  // then in the wiped region, with the ranges
  Mapping* ranges_ = nullptr;
  int capacity_ = 0;
};

}  // namespace leakwatch::shim
