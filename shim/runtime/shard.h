// Which shard of a contended counter this thread updates.
//
// Counters that every sampled allocation touches (a stack's estimates, the
// sampled set's size, the unwinder barrier) are split over kShards cache
// lines; a thread always uses the same one (threads are dealt round-robin
// as they first reach a slow path), readers add them up. With every
// allocation recorded this is what keeps two threads allocating from the
// same call site from fighting over one cache line.
//
// Thread-safety: per-thread state and one atomic. Async-signal-safe.
#pragma once

#include <atomic>

#include "shim/runtime/guard.h"

namespace leakwatch::shim {

constexpr unsigned kShards = 4;
extern std::atomic<unsigned> g_next_shard;

inline unsigned thread_shard() {
  unsigned s = t_state.shard;
  if (__builtin_expect(s == 0, 0))
    s = t_state.shard = g_next_shard.fetch_add(1, std::memory_order_relaxed) % kShards + 1;
  return s - 1;
}

}  // namespace leakwatch::shim
