#include "shim/record/mappings.h"

#include <cmath>
#include <cstring>
#include <new>

#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

bool MappingSet::init(int capacity) {
  // The count first, then the ranges, all in one region wiped on fork.
  auto* mem = static_cast<char*>(map_pages_wiped_on_fork(reserve_bytes(capacity)));
  if (!mem) return false;
  count_ = new (mem) std::atomic<int>(0);
  ranges_ = reinterpret_cast<Mapping*>(mem + 64);
  capacity_ = capacity;
  return true;
}

void MappingSet::release() {
  if (ranges_) unmap_pages(reinterpret_cast<char*>(ranges_) - 64, reserve_bytes(capacity_));
  count_ = &no_ranges_;
  ranges_ = nullptr;
  capacity_ = 0;
}

int MappingSet::lower_bound(uintptr_t addr) const {
  int lo = 0, hi = count_->load(std::memory_order_relaxed);
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (ranges_[mid].end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

void MappingSet::erase_at(int i) {
  int n = count_->load(std::memory_order_relaxed);
  std::memmove(&ranges_[i], &ranges_[i + 1], sizeof(Mapping) * static_cast<std::size_t>(n - i - 1));
  count_->store(n - 1, std::memory_order_relaxed);
}

bool MappingSet::insert_at(int i, const Mapping& m) {
  int n = count_->load(std::memory_order_relaxed);
  if (n >= capacity_) return false;
  std::memmove(&ranges_[i + 1], &ranges_[i], sizeof(Mapping) * static_cast<std::size_t>(n - i));
  ranges_[i] = m;
  count_->store(n + 1, std::memory_order_relaxed);
  return true;
}

bool MappingSet::add(const Mapping& m) {
  if (!ranges_ || m.end <= m.start) return false;
  return insert_at(lower_bound(m.start), m);
}

bool MappingSet::find(uintptr_t addr, Mapping* out) const {
  if (!ranges_) return false;
  int i = lower_bound(addr);
  if (i >= count_->load(std::memory_order_relaxed) || ranges_[i].start > addr) return false;
  *out = ranges_[i];
  return true;
}

int MappingSet::copy(Mapping* out, int cap) const {
  int n = ranges_ ? count_->load(std::memory_order_relaxed) : 0;
  if (n > cap) n = cap;
  std::memcpy(out, ranges_, sizeof(Mapping) * static_cast<std::size_t>(n));
  return n;
}

void MappingSet::remove(uintptr_t start, uintptr_t end, ChangeFn fn, void* ctx) {
  if (!ranges_ || end <= start) return;
  for (int i = lower_bound(start); i < count_->load(std::memory_order_relaxed) && ranges_[i].start < end;) {
    Mapping m = ranges_[i];
    const double w = m.count_w;
    Mapping left = m, right = m;
    bool has_left = m.start < start, has_right = m.end > end;
    left.end = start;
    right.start = end;
    // The pieces that stay keep the weight; the count stays on one of them.
    left.bytes_w = has_left ? static_cast<uint64_t>(std::llround(static_cast<double>(left.end - left.start) * w)) : 0;
    right.bytes_w = has_right ? static_cast<uint64_t>(std::llround(static_cast<double>(right.end - right.start) * w)) : 0;
    left.count_fp = has_left ? m.count_fp : 0;
    right.count_fp = has_right && !has_left ? m.count_fp : 0;
    fn(Change{m.stack, m.bytes_w, m.count_fp, left.bytes_w + right.bytes_w, left.count_fp + right.count_fp}, ctx);
    if (has_left && has_right) {
      ranges_[i] = left;
      if (!insert_at(i + 1, right)) {
        // Full: the right piece is forgotten (its estimate goes with it).
        fn(Change{m.stack, right.bytes_w, right.count_fp, 0, 0}, ctx);
      }
      return;  // [start, end) was inside this one range
    }
    if (has_left) {
      ranges_[i] = left;
      ++i;
    } else if (has_right) {
      ranges_[i] = right;
      return;  // nothing after it can overlap
    } else {
      erase_at(i);
    }
  }
}

}  // namespace leakwatch::shim
