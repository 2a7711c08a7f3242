#include "shim/record/stack_table.h"

#include <algorithm>
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
  for (int i = 0; i < nindexes_; ++i) unmap_pages(indexes_[i], index_bytes(indexes_[i]->mask + 1));
  if (counters_) unmap_pages(counters_, sizeof(StackCounters) * kShards * max_stacks_);
  arena_.reset();
  entries_ = nullptr, counters_ = nullptr;
  index_.store(nullptr, std::memory_order_relaxed);
  nindexes_ = 0, max_stacks_ = 0;
  count_.store(0, std::memory_order_release);
  full_.store(false, std::memory_order_relaxed);
}

bool StackTable::init(uint32_t max_stacks) {
  max_stacks_ = max_stacks;
  entries_ = static_cast<StackEntry**>(map_pages(sizeof(StackEntry*) * max_stacks, true));
  Index* index = grow(nullptr, 0);
  index_.store(index, std::memory_order_release);
  counters_ = static_cast<StackCounters*>(map_pages_wiped_on_fork(sizeof(StackCounters) * kShards * max_stacks));
  // Id 0: the "[other]" stack, where samples go once the table is full.
  if (entries_ && index && counters_) entries_[0] = make(nullptr, 0, kMallocStack, 0, 0);
  if (!entries_ || !index || !counters_ || !entries_[0]) {
    release();
    return false;
  }
  count_.store(1, std::memory_order_release);
  return true;
}

StackEntry* StackTable::make(const uintptr_t* frames, uint32_t depth, uint32_t kind, uint64_t hash, uint32_t id) {
  void* mem = arena_.alloc(sizeof(StackEntry) + depth * sizeof(uintptr_t), alignof(StackEntry));
  if (!mem) return nullptr;
  auto* e = new (mem) StackEntry{hash, id, depth, kind, max_stacks_, counters_ + id};
  if (depth) std::memcpy(e->frames, frames, depth * sizeof(uintptr_t));
  return e;
}

int64_t StackTable::probe(const Index* index, const uintptr_t* frames, uint32_t depth, uint32_t kind, uint64_t h,
                          uint64_t* empty_slot) const {
  const uint64_t mask = index->mask;
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t slot = index->slots[i].load(std::memory_order_acquire);
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

StackTable::Index* StackTable::grow(const Index* from, uint32_t count) {
  const uint64_t cap = from ? (from->mask + 1) * 2 : std::min(kFirstIndexSlots, index_capacity(max_stacks_));
  if (nindexes_ == kMaxIndexes) return nullptr;
  auto* index = static_cast<Index*>(map_pages(index_bytes(cap), true));
  if (!index) return nullptr;
  index->mask = cap - 1;
  // Id 0, "[other]", is never looked up; the new table is private until
  // published, so relaxed stores.
  for (uint32_t id = 1; id < count; ++id) {
    uint64_t i = entries_[id]->hash & index->mask;
    while (index->slots[i].load(std::memory_order_relaxed) != 0) i = (i + 1) & index->mask;
    index->slots[i].store(id + 1, std::memory_order_relaxed);
  }
  indexes_[nindexes_++] = index;
  return index;
}

uint32_t StackTable::intern(const uintptr_t* frames, uint32_t depth, uint32_t kind) {
  if (!entries_) return 0;
  uint64_t h = hash_frames(frames, depth) ^ (uint64_t{kind} * 0x9E3779B97F4A7C15ULL);
  uint64_t empty;
  // Most samples hit a known stack: find it without the lock. Entries are
  // published (release) before their index slot, so a found slot is whole.
  int64_t found = probe(index_.load(std::memory_order_acquire), frames, depth, kind, h, &empty);
  if (found >= 0) return static_cast<uint32_t>(found);
  LockGuard g(lock_);
  Index* index = index_.load(std::memory_order_relaxed);
  found = probe(index, frames, depth, kind, h, &empty);  // added meanwhile, or in a newer index
  if (found >= 0) return static_cast<uint32_t>(found);
  uint32_t id = count_.load(std::memory_order_relaxed);
  if (id >= max_stacks_) {
    full_.store(true, std::memory_order_relaxed);
    return 0;
  }
  if (2 * (uint64_t{id} + 1) > index->mask + 1) {
    // This stack would make the index more than half full: publish one
    // twice the size first. If none can be mapped, fill the old one, but
    // never to its last empty slot (probes end at an empty slot).
    if (Index* bigger = grow(index, id)) {
      index_.store(bigger, std::memory_order_release);
      index = bigger;
      probe(index, frames, depth, kind, h, &empty);
    } else if (uint64_t{id} + 1 > index->mask) {
      full_.store(true, std::memory_order_relaxed);
      return 0;
    }
  }
  StackEntry* e = make(frames, depth, kind, h, id);
  if (!e) return 0;
  entries_[id] = e;
  count_.store(id + 1, std::memory_order_release);
  index->slots[empty].store(id + 1, std::memory_order_release);
  return id;
}

void StackTable::on_alloc(uint32_t id, uint64_t bytes_w, uint64_t count_fp) {
  StackCounters& c = counters(id);
  c.live_bytes.fetch_add(bytes_w, std::memory_order_relaxed);
  c.live_count_fp.fetch_add(count_fp, std::memory_order_relaxed);
  c.alloc_bytes.fetch_add(bytes_w, std::memory_order_relaxed);
  c.alloc_count_fp.fetch_add(count_fp, std::memory_order_relaxed);
  c.live_samples.fetch_add(1, std::memory_order_relaxed);
  c.total_samples.fetch_add(1, std::memory_order_relaxed);
}

void StackTable::on_free(uint32_t id, uint64_t bytes_w, uint64_t count_fp) {
  if (id >= count()) return;
  StackCounters& c = counters(id);
  c.live_bytes.fetch_sub(bytes_w, std::memory_order_relaxed);
  c.live_count_fp.fetch_sub(count_fp, std::memory_order_relaxed);
  c.live_samples.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim

namespace leakwatch::shim {

void StackTable::on_resize(uint32_t id, uint64_t old_b, uint64_t old_c, uint64_t new_b, uint64_t new_c) {
  if (id >= count()) return;
  StackCounters& c = counters(id);
  c.live_bytes.fetch_add(new_b - old_b, std::memory_order_relaxed);  // modular: may shrink
  c.live_count_fp.fetch_add(new_c - old_c, std::memory_order_relaxed);
  if (new_b > old_b) c.alloc_bytes.fetch_add(new_b - old_b, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim
