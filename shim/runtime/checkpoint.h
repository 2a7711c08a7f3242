// Checkpoints: where the shim does its periodic work, without a thread.
//
// The shim starts no thread of its own: a thread would keep a process
// whose last thread calls pthread_exit alive for ever, swallow signals
// sent to it, make glibc take its multi-threaded (slower) paths and its
// fork locks. Instead every slow path of the hooks -- a sampled
// allocation, the free of a sampled block, and at least every
// kCheckWindow bytes a thread allocates (sample/sampler.h) -- ends with
// maybe_checkpoint(): one relaxed load and a coarse clock read (due times
// are met up to one timer tick late). The work itself (a dump, the trigger
// file, the memory high-water mark: dump/schedule.h) runs on the
// allocating thread, outside the re-entrancy guard's nested calls, with
// errno preserved. A process that does not allocate does not change what a
// dump would say: it gets its next dump at its next allocation.
//
// Thread-safety: any thread; the deadline is an atomic and one thread at a
// time wins it. Never allocates.
#pragma once

#include <atomic>
#include <cstdint>

#include "shim/runtime/clock.h"
#include "shim/runtime/guard.h"

namespace leakwatch::shim {

// When the next checkpoint is due (CLOCK_MONOTONIC ns); 0: never (off).
extern std::atomic<uint64_t> g_checkpoint_due_ns;
// The work, installed by the lifecycle once profiling is on. Called with
// the current time (CLOCK_MONOTONIC), by at most one thread at a time; it
// sets the next due time itself (checkpoint_set_due).
using CheckpointFn = void (*)(uint64_t now_ns);
void checkpoint_install(CheckpointFn fn, uint64_t first_due_ns);
inline void checkpoint_set_due(uint64_t due_ns) { g_checkpoint_due_ns.store(due_ns, std::memory_order_relaxed); }

__attribute__((noinline)) void checkpoint_run();

inline void maybe_checkpoint() {
  uint64_t due = g_checkpoint_due_ns.load(std::memory_order_relaxed);
  if (due == 0 || t_state.guard != 0) return;
  if (mono_coarse_ns() >= due) checkpoint_run();
}

}  // namespace leakwatch::shim
