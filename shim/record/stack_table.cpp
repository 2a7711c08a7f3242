#include "shim/record/stack_table.h"

#include <cstring>
#include <new>

namespace leakwatch::shim {

uint64_t hash_frames(const uintptr_t* frames, uint32_t depth) {
  uint64_t h = 0xcbf29ce484222325ULL ^ depth;
  for (uint32_t i = 0; i < depth; ++i) {
    h ^= frames[i];
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return h;
}

void StackTable::release() {
  if (entries_) unmap_pages(entries_, sizeof(StackEntry*) * max_stacks_);
  if (index_) unmap_pages(index_, sizeof(uint32_t) * index_capacity(max_stacks_));
  if (counters_) unmap_pages(counters_, sizeof(StackCounters) * kShards * max_stacks_);
  arena_.reset();
  entries_ = nullptr, index_ = nullptr, counters_ = nullptr;
  index_mask_ = 0, max_stacks_ = 0;
  count_.store(0, std::memory_order_release);
  full_.store(false, std::memory_order_relaxed);
}

bool StackTable::init(uint32_t max_stacks) {
  max_stacks_ = max_stacks;
  const uint64_t index_cap = index_capacity(max_stacks);
  entries_ = static_cast<StackEntry**>(map_pages(sizeof(StackEntry*) * max_stacks, true));
  index_ = static_cast<std::atomic<uint32_t>*>(map_pages(sizeof(uint32_t) * index_cap, true));
  counters_ = static_cast<StackCounters*>(map_pages_wiped_on_fork(sizeof(StackCounters) * kShards * max_stacks));
  index_mask_ = index_cap - 1;
  // Id 0: the "[other]" stack, where samples go once the table is full.
  if (entries_ && index_ && counters_) entries_[0] = make(nullptr, 0, kMallocStack, 0, 0);
  if (!entries_ || !index_ || !counters_ || !entries_[0]) {
    release();
    return false;
  }
  count_.store(1, std::memory_order_release);
  return true;
}

StackEntry* StackTable::make(const uintptr_t* frames, uint32_t depth, uint32_t kind, uint64_t hash, uint32_t id) {
  void* mem = arena_.alloc(sizeof(StackEntry) + depth * sizeof(uintptr_t), alignof(StackEntry));
  if (!mem) return nullptr;
  auto* e = new (mem) StackEntry{hash, id, depth, kind, 0, counters_ + std::size_t{id} * kShards};
  if (depth) std::memcpy(e->frames, frames, depth * sizeof(uintptr_t));
  return e;
}

int64_t StackTable::probe(const uintptr_t* frames, uint32_t depth, uint32_t kind, uint64_t h,
                          uint64_t* empty_slot) const {
  for (uint64_t i = h & index_mask_;; i = (i + 1) & index_mask_) {
    uint32_t slot = index_[i].load(std::memory_order_acquire);
    if (slot == 0) {
      *empty_slot = i;
      return -1;
    }
    StackEntry* e = entries_[slot - 1];
    if (e->hash == h && e->depth == depth && e->kind == kind &&
        std::memcmp(e->frames, frames, depth * sizeof(uintptr_t)) == 0)
      return e->id;
  }
}

uint32_t StackTable::intern(const uintptr_t* frames, uint32_t depth, uint32_t kind) {
  if (!entries_) return 0;
  uint64_t h = hash_frames(frames, depth) ^ (uint64_t{kind} * 0x9E3779B97F4A7C15ULL);
  uint64_t empty;
  // Most samples hit a known stack: find it without the lock. Entries are
  // published (release) before their index slot, so a found slot is whole.
  int64_t found = probe(frames, depth, kind, h, &empty);
  if (found >= 0) return static_cast<uint32_t>(found);
  LockGuard g(lock_);
  found = probe(frames, depth, kind, h, &empty);  // someone may have added it meanwhile
  if (found >= 0) return static_cast<uint32_t>(found);
  uint32_t id = count_.load(std::memory_order_relaxed);
  if (id >= max_stacks_) {
    full_.store(true, std::memory_order_relaxed);
    return 0;
  }
  StackEntry* e = make(frames, depth, kind, h, id);
  if (!e) return 0;
  entries_[id] = e;
  count_.store(id + 1, std::memory_order_release);
  index_[empty].store(id + 1, std::memory_order_release);
  return id;
}

void StackTable::on_alloc(uint32_t id, uint64_t bytes_w, uint64_t count_fp) {
  StackCounters& c = counters_[std::size_t{id} * kShards + thread_shard()];
  c.live_bytes.fetch_add(bytes_w, std::memory_order_relaxed);
  c.live_count_fp.fetch_add(count_fp, std::memory_order_relaxed);
  c.alloc_bytes.fetch_add(bytes_w, std::memory_order_relaxed);
  c.alloc_count_fp.fetch_add(count_fp, std::memory_order_relaxed);
  c.live_samples.fetch_add(1, std::memory_order_relaxed);
  c.total_samples.fetch_add(1, std::memory_order_relaxed);
}

void StackTable::on_free(uint32_t id, uint64_t bytes_w, uint64_t count_fp) {
  if (id >= count()) return;
  StackCounters& c = counters_[std::size_t{id} * kShards + thread_shard()];
  c.live_bytes.fetch_sub(bytes_w, std::memory_order_relaxed);
  c.live_count_fp.fetch_sub(count_fp, std::memory_order_relaxed);
  c.live_samples.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim

namespace leakwatch::shim {

void StackTable::on_resize(uint32_t id, uint64_t old_b, uint64_t old_c, uint64_t new_b, uint64_t new_c) {
  if (id >= count()) return;
  StackCounters& c = counters_[std::size_t{id} * kShards + thread_shard()];
  c.live_bytes.fetch_add(new_b - old_b, std::memory_order_relaxed);  // modular: may shrink
  c.live_count_fp.fetch_add(new_c - old_c, std::memory_order_relaxed);
  if (new_b > old_b) c.alloc_bytes.fetch_add(new_b - old_b, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim
