// The slow paths of the hooks: what happens to an allocation the sampler
// picked, to a free of a pointer that may be sampled, and to a realloc.
// hooks.cpp keeps the fast paths (one countdown, one mask test) and calls
// in here out of line.
//
// Thread-safety: any thread. Sampled allocations take the stack table's
// lock only to intern a new stack; frees are lock-free. Allocations made
// while the re-entrancy guard is held are forwarded unsampled.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <sys/types.h>

#include "shim/record/mappings.h"
#include "shim/record/real_functions.h"
#include "shim/record/sampled_set.h"
#include "shim/record/stack_table.h"
#include "shim/sample/sampler.h"

namespace leakwatch::shim {

enum class Op : int { kMalloc, kCalloc, kMemalign, kAlignedAlloc, kValloc, kPvalloc, kNew, kNewAligned };

extern SampledSet g_samples;
extern StackTable g_stacks;
extern MappingSet g_mappings;
extern std::atomic<uint64_t> g_dropped_samples;

// The tables' sizes. Reserved, not committed -- but under a finite
// RLIMIT_AS every reserved byte counts against the host's limit, so the
// caller may shrink them to fit (fewer distinct stacks before "[other]",
// fewer live samples before drops).
struct RecorderSizes {
  static constexpr uint32_t kMinStacks = 1u << 12;
  static constexpr int kMinLog2Buckets = 12;
  int log2_buckets = 15;  // sampled set: 7 << log2_buckets live samples
  bool dense = false;
  uint32_t max_stacks = 1u << 18;
  int max_mappings = 16384;
};
// Full size for this sampling rate.
RecorderSizes recorder_sizes(uint64_t sample_bytes);
std::size_t recorder_reserve_bytes(const RecorderSizes& s);
// Halves the larger table; false when both are at their smallest.
bool recorder_shrink(RecorderSizes* s);
// False when a table could not be reserved; recorder_release() then gives
// back what was (only safe while no other thread can be in a hook).
bool recorder_init(const RecorderSizes& s);
void recorder_release();

// n is the total size (calloc already multiplied); align only for aligned ops.
__attribute__((noinline)) void* alloc_slow(Op op, std::size_t n, std::size_t align);
__attribute__((noinline)) int posix_memalign_slow(void** out, std::size_t align, std::size_t n);
__attribute__((noinline)) void free_slow(void* p);
// Drops p's record if it is a sampled block (p is about to be freed by
// another path); returns whether it was.
__attribute__((noinline)) bool forget_if_sampled(void* p);
// realloc of a block on a marked granule (sampled, or its neighbour).
__attribute__((noinline)) void* realloc_slow(void* p, std::size_t n);
// realloc grew an unsampled block, now r of n bytes, and the countdown ran
// out on its `growth`: r is sampled now or not (the slow path charges it).
__attribute__((noinline)) void* realloc_grew_slow(void* r, std::size_t n, std::size_t growth);

// A realloc that left its block, now r of n bytes, holding `after` bytes
// where it held `before`: growth runs the countdown down, and a countdown
// that runs out sends r to the slow path.
inline __attribute__((always_inline)) void* charge_growth(void* r, std::size_t n, std::size_t before,
                                                          std::size_t after) {
  if (__builtin_expect(after <= before || sample_tick(after - before), 1)) return r;
  return realloc_grew_slow(r, n, after - before);
}

// realloc_unsampled() for another allocator than glibc's, with
// malloc_usable_size().
__attribute__((noinline)) void* realloc_unsampled_other(void* p, std::size_t n);
// realloc_unsampled() measured: the chunk words before and after the call
// (a chunk mmapped by itself, or a size that may become one).
__attribute__((noinline)) void* realloc_unsampled_measured(void* p, std::size_t n);
// The realloc itself, then realloc_grew_slow() if it succeeded.
__attribute__((noinline)) void* realloc_then_grew_slow(void* p, std::size_t n, std::size_t growth);

// glibc's chunk for a request of n bytes, n below kGlibcHeapBelow (x86-64:
// 8 bytes of header, a multiple of 16; 32 at least, which this leaves out:
// every chunk is 32 bytes at least, so a smaller answer is no growth).
inline std::size_t glibc_chunk_for(std::size_t n) { return (n + 8 + 15) & ~std::size_t{15}; }

// realloc of a block that is not sampled (the hook's fast path, and the
// slow path's for a neighbour of a sampled block). Only growth counts
// toward sampling: a block that is realloc'd in place many times is not
// sampled as many times. Growth is what the allocator holds for the block
// after the call less what it held before: over a block's life those
// differences add up to its final size less its first (which malloc
// charged), whichever blocks are grown in between. Charging from the size
// asked for before needs that size, which only sampled blocks keep: a
// guess from the block's usable size left its slack uncharged, and strings
// built by turns from 1..4-byte appends were counted at 20%. A block whose
// growth is sampled is recorded after the call, with the same stack.
//
// With glibc, below its mmap threshold, "after" is known before the call:
// the chunk glibc makes for n bytes. It is 16 bytes larger when glibc
// keeps a remainder too small to split off (0.15-0.2% of the calls of the
// realloc-growth workload; growth undercounted by 0.1-0.2%). So the call
// is a tail call: measuring after it made realloc a call with a stack
// frame, 5% of the CPU time of a realloc-heavy program (docs/performance.md
// section 13).
inline __attribute__((always_inline)) void* realloc_unsampled(void* p, std::size_t n) {
  // Another allocator than glibc's (the bound is 0), or a size that may be
  // mmapped: one compare.
  if (__builtin_expect(n >= g_glibc_realloc_below, 0))
    return g_glibc_chunks ? realloc_unsampled_measured(p, n) : realloc_unsampled_other(p, n);
  const std::size_t h = glibc_chunk_word(p);
  if (__builtin_expect((h & kGlibcMmapped) != 0, 0)) return realloc_unsampled_measured(p, n);
  const std::size_t before = h & ~kGlibcFlags, after = glibc_chunk_for(n);
  if (__builtin_expect(after <= before || sample_tick(after - before), 1)) return g_real.realloc(p, n);
  return realloc_then_grew_slow(p, n, after - before);
}

// Anonymous mappings (record/mappings.h), each sampled by itself
// (sample_mapping, sampler.h); `caller`: the mmap caller's return address
// (mappings an allocator makes for its own heap are its business, not the
// program's).
// A mapping that MAP_FIXED replaces, munmap removes or mremap moves leaves
// the table first.
__attribute__((noinline)) void* mmap_slow(void* addr, std::size_t len, int prot, int flags, int fd, off_t off,
                                            uintptr_t caller);
__attribute__((noinline)) int munmap_slow(void* addr, std::size_t len);
__attribute__((noinline)) void* mremap_slow(void* old_addr, std::size_t old_len, std::size_t new_len, int flags,
                                            void* new_addr);
// The code range whose mmap calls are not the program's: the next
// allocator's library, when it is not libc (jemalloc, tcmalloc).
void recorder_set_allocator_range(uintptr_t lo, uintptr_t hi);

}  // namespace leakwatch::shim
