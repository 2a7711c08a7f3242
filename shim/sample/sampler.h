// Poisson sampling over bytes.
//
// Think of every byte the program allocates as a point on one line. Sample
// points fall on that line as a Poisson process with mean spacing S
// (LEAKWATCH_SAMPLE_BYTES). An allocation of n bytes is sampled when at
// least one point falls inside it, which happens with probability
//     p(n) = 1 - exp(-n / S).
// Each thread keeps its own countdown to the next point, drawn from an
// exponential distribution with mean S; because the exponential is
// memoryless, a fresh draw after each sample keeps allocations independent.
// A sampled allocation stands for 1/p(n) allocations and n/p(n) bytes, so
// sums of these weights are unbiased estimates of the true totals. With
// S == 1 every allocation is recorded with weight exactly 1.
//
// Hot path contract: sample_tick() is one thread-local subtraction and a
// compare; all else is in sample_slow(), out of line.
//
// The check window: the distance to the next sample point is handed to the
// hot path in pieces of at most kCheckWindow bytes (the rest waits in
// t_state.pending), so every thread reaches the slow path at least once per
// kCheckWindow bytes it allocates even when S is large. The shim has no
// thread of its own; those visits are when it looks at the clock (dumps are
// due, a trigger, a new memory high: runtime/checkpoint.h). Crossing a
// window boundary is not a sample: the Poisson process is the same.
//
// Thread-safety: per-thread state only. Async-signal-safe. Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shim/runtime/guard.h"

namespace leakwatch::shim {

// True while the current allocation needs no further attention: the
// countdown (never negative between calls) is charged n. Otherwise nothing
// is charged; sample_slow() charges it. One unsigned compare also keeps a
// huge n (malloc(SIZE_MAX)) off the fast path without masking it.
//
// On x86-64 the charge is one `sub` on the thread-local word, whose flags
// are the test (below or equal: n >= countdown); the rare miss adds n back.
// Written by the compiler that is a load, compare, subtract and store:
// with the tail call, malloc's fast path went from 8 instructions to 4,
// the bare interposer's count (docs/performance.md, section 13). The asm
// has no outputs (GCC 12 deletes the label's block of an `asm goto` with
// an output operand): the countdown is an input, and "memory" tells the
// compiler it changed.
inline __attribute__((always_inline)) bool sample_tick(std::size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm goto("subq %1, %0\n\tjbe %l[miss]" : : "m"(t_state.countdown), "r"(n) : "cc", "memory" : miss);
  return true;
miss: {
  // A signal handler that allocated between the sub and here charged the
  // wrapped value; past the sample point either way, so "take it now".
  const auto c = static_cast<long long>(static_cast<unsigned long long>(t_state.countdown) + n);
  t_state.countdown = c < 0 ? 0 : c;
  return false;
}
#else
  const auto c = static_cast<unsigned long long>(t_state.countdown);
  if (__builtin_expect(n < c, 1)) {
    t_state.countdown = static_cast<long long>(c - n);
    return true;
  }
  return false;
#endif
}

constexpr long long kCheckWindow = 64 * 1024;

// Called when sample_tick() returned false: charges the n bytes, returns
// whether the allocation is sampled, and arms the thread's next countdown
// either way.
bool sample_slow(std::size_t n, uint64_t mean_bytes);

// Sets the distance to the next sample point (tests; sample_slow uses it).
void sample_arm(long long bytes);

// Keeps the thread on the fast path for good (profiling is off).
inline void sample_never() { t_state.countdown = 0x7fffffffffffffffLL; }

struct Weight {
  double bytes;  // n / p(n)
  double count;  // 1 / p(n)
};
Weight sample_weight(std::size_t n, uint64_t mean_bytes);

// 1/p(G) for a block that has been exposed to G bytes of sample points
// (its size, plus every growth realloc charged); 1 when mean <= 1.
double inclusion_count(double exposed_bytes, uint64_t mean_bytes);
// The count of a block of count_w once its exposure grows by `growth`
// bytes: inclusion_count(exposure_of(count_w) + growth), with one expm1 at
// most (the resize of a sampled block, often a few bytes at a time).
double grown_count(double count_w, double growth, uint64_t mean_bytes);
// The inverse: the exposure G whose 1/p(G) is count_w (64 S for a weight
// of 1, where the inverse is unbounded).
double exposure_of(double count_w, uint64_t mean_bytes);

// Anonymous mappings are sampled apart from allocations, each mapping by
// itself with probability p(n) at a finer mean: a mapping is a system
// call and page faults, so a stack for one in every ~64 KiB mapped costs
// little next to them, and runtimes map their heaps in a few large pieces
// (V8's 256 KiB pages, pymalloc's 1 MiB arenas), which a coarse S would
// count in too few samples to show a trend in a short run. An independent
// trial per mapping is the Poisson process over mapped bytes.
constexpr uint64_t kMappingSampleBytes = 64 * 1024;
inline uint64_t mapping_sample_bytes(uint64_t sample_bytes) {
  return sample_bytes < kMappingSampleBytes ? sample_bytes : kMappingSampleBytes;
}
// Whether a mapping of n bytes is sampled, at mean `mean_bytes`.
bool sample_mapping(std::size_t n, uint64_t mean_bytes);

// Exposed for tests: exponential draw with mean `mean_bytes` from `state`.
long long sample_draw(unsigned long long* state, uint64_t mean_bytes);

}  // namespace leakwatch::shim
