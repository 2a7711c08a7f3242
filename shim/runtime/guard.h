// Re-entrancy guard.
//
// Invariant: while a thread's guard depth is non-zero, every hooked
// allocation call on that thread is forwarded to the real allocator,
// unsampled and unrecorded. The shim holds it around everything it does
// in the slow path (unwinding, bookkeeping), for the whole life of its
// writer thread, and across fork. This is what makes a signal handler that
// allocates while its thread is inside the shim safe: it just forwards.
//
// TLS uses the initial-exec model: the general-dynamic model may call
// __tls_get_addr, which can allocate. The shim must therefore be loaded at
// start-up (LD_PRELOAD), not by dlopen.
//
// Thread-safety: per-thread state only. Async-signal-safe. Never allocates.
#pragma once

namespace leakwatch::shim {

struct ThreadState {
  long long countdown;      // bytes until the slow path; <= 0 means "take it now"
  long long pending;        // bytes of the current draw beyond the countdown (sampler.h)
  unsigned long long rng;   // per-thread PRNG state (0 = not seeded yet)
  int guard;                // re-entrancy depth
  int initialized;          // countdown has been drawn for this thread
  unsigned shard;           // 1 + this thread's counter shard (shard.h); 0 = not dealt yet
};

extern __thread ThreadState t_state __attribute__((tls_model("initial-exec"), visibility("hidden")));

class Guard {
 public:
  Guard() { ++t_state.guard; }
  ~Guard() { --t_state.guard; }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  static bool active() { return t_state.guard != 0; }
};

}  // namespace leakwatch::shim
