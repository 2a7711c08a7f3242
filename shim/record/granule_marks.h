// Which 256-byte granules of memory may hold the start of a sampled block:
// the test free() runs first.
//
// A direct-mapped table of one-byte counters indexed by address / 256 (low
// 20 bits: a contiguous heap of up to 256 MiB maps without aliasing). A
// sampled block adds one to the counter of the granule it starts in, its
// free subtracts one; a free whose counter is zero cannot be of a sampled
// block and goes straight to the allocator. Everything else (a neighbour in
// the same granule, an aliased address) takes the slow path, which asks the
// sampled set. At the default rate about 256 B / 512 KiB = 0.05% of a
// small heap's granules are marked; past 256 MiB aliasing raises that to
// (live samples) / 2^20, 0.2% on a 1 GiB heap.
//
// Why not page-aligned sampled blocks with a `(p & 4095) == 0` test (the
// first design): the test is cheaper, but serving small sampled blocks
// with posix_memalign(4096) makes glibc carve and consolidate around them,
// which cost up to 7% on churn-heavy programs. Why not 4 KiB granules:
// the hot neighbours of a live sampled block then take the slow path too
// often (docs/performance.md).
//
// A counter that reaches 255 sticks there (never decremented): only a
// cost, never a missed free. Dense mode marks every granule this way, and
// the bootstrap arena's blocks are marked so too (their frees must never
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

constexpr unsigned kGranuleShift = 8;
constexpr unsigned kGranuleMarkBits = 20;
constexpr uint8_t kStickyMark = 255;
extern std::atomic<uint8_t> g_granule_marks[1u << kGranuleMarkBits] __attribute__((visibility("hidden")));

inline std::size_t granule_index(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) >> kGranuleShift) & ((std::size_t{1} << kGranuleMarkBits) - 1);
}

// False: certainly not a sampled (or bootstrap) block.
// On x86-64 the test is one `cmpb $0` on the counter (a byte load is a
// relaxed atomic load there): the compiler's relaxed load is a movzbl and a
// test, one instruction more on every free.
inline __attribute__((always_inline)) bool maybe_sampled(const void* p) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm goto("cmpb $0, %0\n\tjne %l[marked]" : : "m"(g_granule_marks[granule_index(p)]) : "cc" : marked);
  return false;
marked:
  return true;
#else
  return g_granule_marks[granule_index(p)].load(std::memory_order_relaxed) != 0;
#endif
}

void granule_mark(const void* p);         // a sampled block now starts here
void granule_unmark(const void* p);       // ... no longer
void granule_mark_sticky(const void* p);  // for good (bootstrap blocks)
void granule_mark_all();                  // dense mode: every free asks the sampled set

}  // namespace leakwatch::shim
