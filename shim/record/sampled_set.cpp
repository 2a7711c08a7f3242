#include "shim/record/sampled_set.h"

#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

bool SampledSet::init(int log2_buckets) {
  uint64_t n = uint64_t{1} << log2_buckets;
  // Wiped on fork: a child's sampled set starts empty (stack_table.h says why).
  buckets_ = static_cast<Bucket*>(map_pages_wiped_on_fork(n * sizeof(Bucket)));
  if (!buckets_) return false;
  mask_ = n - 1;
  return true;
}

SampledSet::Bucket* SampledSet::home(uintptr_t key) const {
  // Fibonacci hashing; the low 4 bits of a heap pointer carry nothing.
  uint64_t h = (static_cast<uint64_t>(key) >> 4) * 0x9E3779B97F4A7C15ULL;
  return &buckets_[(h >> 20) & mask_];
}

std::atomic<uintptr_t>* SampledSet::find(uintptr_t key, Bucket** bucket, int* slot) const {
  Bucket* b = home(key);
  for (int i = 0; i < kSlots; ++i)
    if (b->key[i].load(std::memory_order_acquire) == key) return *bucket = b, *slot = i, &b->key[i];
  if (b->displaced.load(std::memory_order_acquire) == 0) return nullptr;
  uint64_t idx = static_cast<uint64_t>(b - buckets_);
  for (int w = 1; w <= kWindow; ++w) {
    Bucket* o = &buckets_[(idx + w) & mask_];
    for (int i = 0; i < kSlots; ++i)
      if (o->key[i].load(std::memory_order_acquire) == key) return *bucket = o, *slot = i, &o->key[i];
  }
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

bool SampledSet::update(uintptr_t key, const SampleInfo& info, SampleInfo* old) {
  if (!buckets_) return false;
  Bucket* b;
  int s;
  if (!find(key, &b, &s)) return false;
  *old = b->info[s];
  b->info[s] = info;
  std::atomic_thread_fence(std::memory_order_release);
  return true;
}

bool SampledSet::insert(uintptr_t key, const SampleInfo& info) {
  if (!buckets_ || key == 0) return false;
  Bucket* h = home(key);
  auto try_bucket = [&](Bucket* b) {
    for (int i = 0; i < kSlots; ++i) {
      uintptr_t expected = 0;
      if (b->key[i].load(std::memory_order_relaxed) == 0 &&
          b->key[i].compare_exchange_strong(expected, key, std::memory_order_acq_rel)) {
        b->info[i] = info;
        // Publish the payload to the thread that will free this address.
        std::atomic_thread_fence(std::memory_order_release);
        return true;
      }
    }
    return false;
  };
  if (try_bucket(h)) {
    live_[thread_shard()].n.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Announce the displacement before placing, so a concurrent lookup of
  // this key (which cannot happen before we return) would find it.
  h->displaced.fetch_add(1, std::memory_order_acq_rel);
  uint64_t idx = static_cast<uint64_t>(h - buckets_);
  for (int w = 1; w <= kWindow; ++w) {
    if (try_bucket(&buckets_[(idx + w) & mask_])) {
      live_[thread_shard()].n.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  h->displaced.fetch_sub(1, std::memory_order_acq_rel);
  return false;
}

bool SampledSet::erase(uintptr_t key, SampleInfo* info) {
  if (!buckets_) return false;
  Bucket* b;
  int s;
  std::atomic<uintptr_t>* k = find(key, &b, &s);
  if (!k) return false;
  std::atomic_thread_fence(std::memory_order_acquire);
  if (info) *info = b->info[s];
  uintptr_t expected = key;
  // A CAS, not a store: two racing erases of one key (a double free in the
  // host) must not both succeed.
  if (!k->compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return false;
  if (b != home(key)) home(key)->displaced.fetch_sub(1, std::memory_order_acq_rel);
  live_[thread_shard()].n.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

}  // namespace leakwatch::shim
