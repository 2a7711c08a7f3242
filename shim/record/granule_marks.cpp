#include "shim/record/granule_marks.h"

namespace leakwatch::shim {

std::atomic<uint8_t> g_granule_marks[1u << kGranuleMarkBits];

void granule_mark(const void* p) {
  auto& m = g_granule_marks[granule_index(p)];
  uint8_t v = m.load(std::memory_order_relaxed);
  while (v != kStickyMark && !m.compare_exchange_weak(v, static_cast<uint8_t>(v + 1), std::memory_order_relaxed)) {
  }
}

void granule_unmark(const void* p) {
  auto& m = g_granule_marks[granule_index(p)];
  uint8_t v = m.load(std::memory_order_relaxed);
  while (v != kStickyMark && v != 0 &&
         !m.compare_exchange_weak(v, static_cast<uint8_t>(v - 1), std::memory_order_relaxed)) {
  }
}

void granule_mark_sticky(const void* p) { g_granule_marks[granule_index(p)].store(kStickyMark, std::memory_order_relaxed); }

void granule_mark_all() {
  for (auto& m : g_granule_marks) m.store(kStickyMark, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim
