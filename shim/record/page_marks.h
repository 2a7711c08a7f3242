// Which pages may hold a sampled block: the test free() runs first.
//
// A direct-mapped table of small counters indexed by page number (low 18
// bits, so a contiguous heap of up to 1 GiB maps without aliasing). A
// sampled block adds one to its first page's counter, its free subtracts
// one; a free whose page counter is zero cannot be of a sampled block and
// goes straight to the allocator. Everything else (a neighbour on a marked
// page, an aliased page) takes the slow path, which asks the sampled set.
// At the default rate about page size / sample bytes of the heap's pages
// are marked (~0.8%), whatever the heap size.
//
// Why not page-aligned sampled blocks with a `(p & 4095) == 0` test: the
// test is cheaper, but serving small sampled blocks with
// posix_memalign(4096) makes glibc carve and consolidate around them, which
// cost up to 7% on churn-heavy programs (docs/performance.md).
//
// A counter that reaches 255 sticks there (never decremented): only a
// cost, never a missed free. Dense mode marks every page this way, and
// the bootstrap arena's pages are marked so too (their frees must never
// reach the allocator).
//
// Thread-safety: atomic counters, lock-free, async-signal-safe. The
// program orders a block's allocation before its free, so a free always
// sees its own block's mark.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

constexpr unsigned kPageMarkBits = 18;
constexpr uint8_t kStickyMark = 255;
extern std::atomic<uint8_t> g_page_marks[1u << kPageMarkBits];

inline std::size_t page_mark_index(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) >> 12) & ((std::size_t{1} << kPageMarkBits) - 1);
}

// False: certainly not a sampled (or bootstrap) block.
inline bool maybe_sampled(const void* p) {
  return g_page_marks[page_mark_index(p)].load(std::memory_order_relaxed) != 0;
}

void page_mark(const void* p);         // a sampled block now starts here
void page_unmark(const void* p);       // ... no longer
void page_mark_sticky(const void* p);  // for good (bootstrap blocks)
void page_mark_all();                  // dense mode: every free asks the sampled set

}  // namespace leakwatch::shim
