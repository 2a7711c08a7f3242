#include "shim/record/sampled_set.h"

#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

bool SampledSet::init(int log2_buckets, int log2_start, bool huge) {
  uint64_t n = uint64_t{1} << log2_buckets;
  // Wiped on fork: a child's sampled set starts empty (stack_table.h says why).
  buckets_ = static_cast<Bucket*>(map_pages_wiped_on_fork(reserve_bytes(log2_buckets)));
  if (!buckets_) return false;
  mask_ = n - 1;
  max_level_ = log2_buckets;
  start_level_ = log2_start < log2_buckets ? log2_start : log2_buckets;
  huge_ = huge;
  level_.store(start_level_, std::memory_order_release);
  return true;
}

void SampledSet::release() {
  if (buckets_) unmap_pages(buckets_, reserve_bytes(max_level_));
  buckets_ = nullptr;
  mask_ = 0;
  start_level_ = max_level_ = 0;
  level_.store(0, std::memory_order_release);
}

uint64_t SampledSet::hash(uintptr_t key) {
  // Fibonacci hashing; the low 4 bits of a heap pointer carry nothing.
  return ((static_cast<uint64_t>(key) >> 4) * 0x9E3779B97F4A7C15ULL) >> 20;
}

// Level `start` homes keys in buckets [0, 2^start); each later level L in
// the buckets it adds, [2^(L-1), 2^L): new keys go where the load is low,
// not on top of the older levels' keys.
SampledSet::Bucket* SampledSet::home(uint64_t h, int level) const {
  if (level == start_level_) return &buckets_[h & ((uint64_t{1} << level) - 1)];
  const uint64_t half = uint64_t{1} << (level - 1);
  return &buckets_[half + (h & (half - 1))];
}

std::atomic<uintptr_t>* SampledSet::find_from(Bucket* b, uintptr_t key, Bucket** bucket, int* slot) const {
  for (int i = 0; i < kSlots; ++i)
    if (b->key[i].load(std::memory_order_acquire) == key) return *bucket = b, *slot = i, &b->key[i];
  // Only the window buckets that hold keys of this home are read.
  uint64_t d = b->displaced.load(std::memory_order_acquire);
  const uint64_t idx = static_cast<uint64_t>(b - buckets_);
  while (d != 0) {
    const int byte = __builtin_ctzll(d) / 8;
    d &= ~(uint64_t{0xff} << (8 * byte));
    Bucket* o = &buckets_[(idx + byte + 1) & mask_];
    for (int i = 0; i < kSlots; ++i)
      if (o->key[i].load(std::memory_order_acquire) == key) return *bucket = o, *slot = i, &o->key[i];
  }
  return nullptr;
}

std::atomic<uintptr_t>* SampledSet::find(uintptr_t key, Bucket** bucket, int* slot) const {
  const uint64_t h = hash(key);
  const int top = level_.load(std::memory_order_acquire);
  // Each level's home is a likely cache miss, and a miss (every new address
  // is checked for a stale record) reads them all: ask for them together.
  for (int l = top - 1; l >= start_level_; --l) __builtin_prefetch(home(h, l));
  for (int l = top; l >= start_level_; --l)  // newest first
    if (auto* k = find_from(home(h, l), key, bucket, slot)) return k;
  return nullptr;
}

bool SampledSet::contains(uintptr_t key) const {
  if (!buckets_) return false;
  Bucket* b;
  int s;
  return find(key, &b, &s) != nullptr;
}

bool SampledSet::lookup(uintptr_t key, SampleInfo* info) const {
  if (!buckets_) return false;
  Bucket* b;
  int s;
  if (!find(key, &b, &s)) return false;
  std::atomic_thread_fence(std::memory_order_acquire);
  *info = b->info[s];
  return true;
}

SampleInfo* SampledSet::entry(uintptr_t key) {
  if (!buckets_) return nullptr;
  Bucket* b;
  int s;
  if (!find(key, &b, &s)) return nullptr;
  std::atomic_thread_fence(std::memory_order_acquire);
  return &b->info[s];
}

bool SampledSet::insert_at(Bucket* h, uintptr_t key, const SampleInfo& info) {
  auto try_bucket = [&](Bucket* b, int w) {
    for (int i = 0; i < kSlots; ++i) {
      uintptr_t expected = 0;
      if (b->key[i].load(std::memory_order_relaxed) == 0 &&
          b->key[i].compare_exchange_strong(expected, key, std::memory_order_acq_rel)) {
        b->info[i] = info;
        b->offset[i] = static_cast<uint8_t>(w);
        // Publish the payload to the thread that will free this address.
        std::atomic_thread_fence(std::memory_order_release);
        return true;
      }
    }
    return false;
  };
  if (try_bucket(h, 0)) return true;
  // Counted once placed: no lookup of this key can come before we return
  // (the program has not seen the address yet).
  uint64_t idx = static_cast<uint64_t>(h - buckets_);
  for (int w = 1; w <= kWindow; ++w)
    if (try_bucket(&buckets_[(idx + w) & mask_], w)) {
      h->displaced.fetch_add(displaced_one(w), std::memory_order_acq_rel);
      return true;
    }
  return false;
}

// Keys' homes move to the buckets [2^level, 2^(level+1)). Those are touched
// all over as keys land (the hash spreads them): with `huge`, on huge pages,
// one fault per 2 MiB instead of 512 (the start level's range stays on small
// pages, so a small program's table stays small).
void SampledSet::open_level(int level) {
  if (!level_.compare_exchange_strong(level, level + 1, std::memory_order_acq_rel) || !huge_) return;
  const uint64_t first = uint64_t{1} << level;
  (void)advise_huge_pages(&buckets_[first], first * sizeof(Bucket));
}

// Half full at this level: spread new keys over twice the buckets.
void SampledSet::maybe_grow(int level) {
  if (level >= max_level_ || size() * 2 < (uint64_t{kSlots} << level)) return;
  open_level(level);
}

bool SampledSet::insert(uintptr_t key, const SampleInfo& info) {
  if (!buckets_ || key == 0) return false;
  const uint64_t h = hash(key);
  for (;;) {
    int level = level_.load(std::memory_order_acquire);
    if (insert_at(home(h, level), key, info)) {
      // The load is summed over the shards every 16th insert of a shard, not
      // every insert (in dense mode that sum was 1.3% of the CPU time).
      if ((live_[thread_shard()].n.fetch_add(1, std::memory_order_relaxed) & 15) == 15) maybe_grow(level);
      return true;
    }
    // A full window: open the next level; at the last, the older levels'
    // ranges take new keys again as their old ones are freed.
    if (level < max_level_) {
      open_level(level);
      continue;
    }
    for (int l = level - 1; l >= start_level_; --l)
      if (insert_at(home(h, l), key, info)) {
        live_[thread_shard()].n.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
    return false;
  }
}

bool SampledSet::erase(uintptr_t key, SampleInfo* info) {
  if (!buckets_) return false;
  Bucket* b;
  int s;
  std::atomic<uintptr_t>* k = find(key, &b, &s);
  if (!k) return false;
  std::atomic_thread_fence(std::memory_order_acquire);
  if (info) *info = b->info[s];
  // A displaced key's home is the bucket `offset` before it, whatever the
  // level. Read before the slot is released: then it may be another key's.
  const uint8_t w = b->offset[s];
  uintptr_t expected = key;
  // A CAS, not a store: two racing erases of one key (a double free in the
  // host) must not both succeed.
  if (!k->compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return false;
  if (w != 0)
    buckets_[(static_cast<uint64_t>(b - buckets_) - w) & mask_].displaced.fetch_sub(displaced_one(w),
                                                                                    std::memory_order_acq_rel);
  live_[thread_shard()].n.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

}  // namespace leakwatch::shim
