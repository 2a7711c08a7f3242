#include "shim/record/page_marks.h"

namespace leakwatch::shim {

std::atomic<uint8_t> g_page_marks[1u << kPageMarkBits];

void page_mark(const void* p) {
  auto& m = g_page_marks[page_mark_index(p)];
  uint8_t v = m.load(std::memory_order_relaxed);
  while (v != kStickyMark && !m.compare_exchange_weak(v, static_cast<uint8_t>(v + 1), std::memory_order_relaxed)) {
  }
}

void page_unmark(const void* p) {
  auto& m = g_page_marks[page_mark_index(p)];
  uint8_t v = m.load(std::memory_order_relaxed);
  while (v != kStickyMark && v != 0 &&
         !m.compare_exchange_weak(v, static_cast<uint8_t>(v - 1), std::memory_order_relaxed)) {
  }
}

void page_mark_sticky(const void* p) { g_page_marks[page_mark_index(p)].store(kStickyMark, std::memory_order_relaxed); }

void page_mark_all() {
  for (auto& m : g_page_marks) m.store(kStickyMark, std::memory_order_relaxed);
}

}  // namespace leakwatch::shim
