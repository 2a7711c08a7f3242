// The part of the calling thread's own stack that stays mapped for as long
// as the thread lives: the bounds for reads that no unwind table vouches
// for.
//
// Why: cfi_walk follows the frame-pointer chain through code without
// unwind tables (JIT code), as libunwind does, and a frame pointer there
// may hold any value. libunwind checks each such read with a system call;
// the walker instead reads only inside this range, learnt once per thread
// from /proc/self/maps:
// - the main thread: the "[stack]" mapping (it only grows);
// - a thread glibc created: the mapping holding both the stack pointer and
//   the thread's static TLS (which glibc places at the top of the thread's
//   stack block), up to that TLS, down to the guard page below (or the
//   stack pointer seen, when no guard page is found).
// A thread running on any other stack (a coroutine's, a signal stack) gets
// no range: such memory can be freed while the thread lives.
//
// Thread-safety: per-thread state only. Never allocates (the maps are read
// into pages mapped for the occasion). Async-signal-safe.
#pragma once

#include <cstdint>

namespace leakwatch::shim {

// True when [lo, hi) lies in the calling thread's own stack. `sp` is a
// stack pointer of the walk in progress (reads below it are not a frame's):
// when the range known so far does not cover [lo, hi) and `sp` is not in
// it, the range is learnt again around `sp`: at once when `sp` is below it
// (the stack grew), else at most once a second per thread.
bool own_stack_holds(uintptr_t lo, uintptr_t hi, uintptr_t sp);

}  // namespace leakwatch::shim
