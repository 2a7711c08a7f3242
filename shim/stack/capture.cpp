#include "shim/stack/capture.h"

#include <atomic>
#include <dlfcn.h>
#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <algorithm>
#include <sys/syscall.h>
#include <unistd.h>
#include <link.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "shim/runtime/clock.h"
#include "shim/runtime/log.h"
#include "shim/runtime/no_cancel.h"
#include "shim/runtime/safe_read.h"
#include "shim/runtime/shard.h"
#include "shim/stack/cfi_walk.h"
#include "shim/stack/loaded_objects.h"

namespace leakwatch::shim {
namespace {

uintptr_t g_self_lo = 0, g_self_hi = 0;
// Threads inside libunwind, in thread shards (shard.h), for the fork
// barrier. Only libunwind: its state (a trace-cache pool under a lock, and
// whatever a walk half-updates) would be copied mid-change into a fork
// child. The shim's own walk (cfi_walk.h) needs no barrier: a thread that
// vanishes at the fork leaves at most one cache slot odd, which the child
// then skips, and loaded_objects_after_fork_child() repairs its gate. So
// the common sample, walked by cfi_walk alone, never holds a fork up.
struct alignas(64) Unwinding {
  std::atomic<int> n{0};
};
Unwinding g_unwinding[kShards];

int unwinding_total() {
  int n = 0;
  for (const auto& u : g_unwinding) n += u.n.load(std::memory_order_seq_cst);
  return n;
}
std::atomic<int> g_fork_pending{0};  // a fork is waiting for them
// Where this thread is with respect to the unwinder count: a fork from a
// signal handler that interrupted it must not wait for itself.
enum : int { kOutside = 0, kEntering = 1, kCounted = 2 };  // kEntering: the count may or may not include it
__thread int t_unwinding __attribute__((tls_model("initial-exec")));
// Inside the shim's own walker: it may hold the loaded-objects gate, which
// libunwind's lookups would then wait for.
__thread int t_in_cfi __attribute__((tls_model("initial-exec")));
// How long a fork waits for other threads to leave libunwind. They
// normally take microseconds; one can be held up by a lock the forking
// thread itself holds (a fork from a signal handler that interrupted the
// loader), or by the scheduler on an overloaded machine: with the soak
// tests side by side on two cores (25 runnable threads) a thread inside the
// barrier sat unscheduled for 0.6-0.7 s, three times in four runs (when the
// barrier still covered every walk). Then the fork goes on and the child
// walks no stack that needs libunwind. The forker sleeps meanwhile (woken
// by each thread that leaves), leaving the CPU to the threads it waits for.
constexpr uint64_t kForkWaitNs = 500ull * 1000000ull;
constexpr uint64_t kPendingWaitNs = 2ull * 1000000ull;
bool g_fork_wait_timed_out = false;  // in the parent, for the child to read
bool g_unwinder_unsafe = false;      // in a child forked while a thread was inside libunwind
std::atomic<int> g_unwind_left{0};   // bumped by a thread leaving libunwind while a fork waits: the forker's futex
constexpr int kForkBusy = -2;        // backtrace_raw: no walk (a fork in the way), say nothing

// libunwind's fast unw_backtrace keeps a per-thread trace cache. It takes
// the cache from a pool under a lock of its own when a thread first
// unwinds, and gives it back under that lock from a thread-exit
// destructor -- outside capture_stack, where the fork barrier cannot see
// it. So a fork can copy that lock held, and in the child any thread that
// needs a new trace cache hangs. The child therefore lets only threads that
// already own a cache (the forking thread is given one in prepare) use
// unw_backtrace while the lock may be dirty; the others walk with
// unw_step, which takes no lock outside the barrier (~40x slower per
// stack, paid only on sampled allocations).
__thread int t_has_trace_cache __attribute__((tls_model("initial-exec")));
std::atomic<int> g_trace_cache_threads{0};  // threads that ever took a trace cache
bool g_trace_pool_maybe_held = false;        // set in a child when another thread had one

int step_backtrace(void** out, int max) {
  unw_context_t context;
  unw_cursor_t cursor;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return 0;
  int n = 0;
  do {
    unw_word_t ip = 0;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    out[n++] = reinterpret_cast<void*>(ip);
  } while (n < max && unw_step(&cursor) > 0);
  return n;
}

void left_libunwind(std::atomic<int>& unwinding) {
  t_unwinding = kEntering;
  unwinding.fetch_sub(1, std::memory_order_seq_cst);
  t_unwinding = kOutside;
  if (__builtin_expect(g_fork_pending.load(std::memory_order_seq_cst), 0)) {
    g_unwind_left.fetch_add(1, std::memory_order_seq_cst);
    syscall(SYS_futex, reinterpret_cast<int*>(&g_unwind_left), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
}

// A walk by libunwind, inside the fork barrier: enter, then check for a
// pending fork (Dekker-style with the forker: either it sees us and waits,
// or we see it and step back). t_unwinding brackets the shared count
// (kEntering, then kCounted), so a fork from a signal handler on this
// thread knows whether the count includes it; it also tells the hooks
// that libunwind's calls (dl_iterate_phdr, its address checks) are the
// shim's to answer.
__attribute__((noinline)) int libunwind_backtrace(void** out, int max) {
  std::atomic<int>& unwinding = g_unwinding[thread_shard()].n;
  for (;;) {
    t_unwinding = kEntering;
    unwinding.fetch_add(1, std::memory_order_seq_cst);
    t_unwinding = kCounted;
    if (!g_fork_pending.load(std::memory_order_seq_cst)) break;
    left_libunwind(unwinding);
    // Wait for the fork to finish, asleep (spinning would take the CPU the
    // fork needs), but never long: this thread may hold a lock of the
    // host's (a FILE's, inside getline's realloc) that the fork itself is
    // waiting for. Then the sample keeps no stack.
    uint64_t give_up = mono_ns() + kPendingWaitNs;
    while (g_fork_pending.load(std::memory_order_acquire)) {
      uint64_t now = mono_ns();
      if (now >= give_up) return kForkBusy;
      struct timespec left = {0, static_cast<long>(give_up - now)};
      syscall(SYS_futex, reinterpret_cast<int*>(&g_fork_pending), FUTEX_WAIT_PRIVATE, 1, &left, nullptr, 0);
    }
  }
  int n = kForkBusy;
  if (!g_unwinder_unsafe) {
    NoCancel no_cancel;  // libunwind validates addresses with pread/write: cancellation points
    SafeReadScope reads;  // ... through safe_read (hooks.cpp): one descriptor for the walk
    if (t_has_trace_cache) {
      n = unw_backtrace(out, max);
    } else if (g_trace_pool_maybe_held) {
      n = step_backtrace(out, max);
    } else {
      t_has_trace_cache = 1;
      g_trace_cache_threads.fetch_add(1, std::memory_order_relaxed);
      n = unw_backtrace(out, max);
    }
  } else {
    log_once(Once::kUnwindFailed,
             "forked while another thread was inside libunwind; stacks that need it are not recorded in this process");
  }
  left_libunwind(unwinding);
  return n;
}

inline __attribute__((always_inline)) int backtrace_raw(void** out, int max) {
  t_in_cfi = 1;  // a fork from a signal handler here must not walk with libunwind (prepare)
  int n = cfi_backtrace(out, max);  // the fast path; -1: a frame needs libunwind
  t_in_cfi = 0;
  if (__builtin_expect(n >= 0, 1)) return n;
  return libunwind_backtrace(out, max);
}

int find_self(struct dl_phdr_info* info, size_t, void* data) {
  auto target = reinterpret_cast<uintptr_t>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (target >= lo && target < hi) {
      g_self_lo = lo;
      g_self_hi = hi;
      return 1;
    }
  }
  return 0;
}

// The unwind itself (libunwind_backtrace holds the fork barrier). Inlined
// into capture_stack: every frame of the shim's own is walked before the
// program's (~50 instructions each by cfi_walk, more by libunwind), so the
// shim keeps them few (capture_stack and the slow path calling it).
inline __attribute__((always_inline)) int unwind_frames(uintptr_t* frames, int max_frames) {
  constexpr int kSkipMax = 16;  // the shim's own frames, at most
  void* raw[256 + kSkipMax];
  int want = max_frames + kSkipMax;
  if (want > static_cast<int>(sizeof raw / sizeof raw[0])) want = sizeof raw / sizeof raw[0];
  int n = backtrace_raw(raw, want);
  if (n == kForkBusy) return 0;
  if (n <= 0) {
    log_once(Once::kUnwindFailed, "stack unwinding failed; samples are kept without call stacks");
    return 0;
  }
  int first = 0;
  while (first < n) {
    auto a = reinterpret_cast<uintptr_t>(raw[first]);
    if (a < g_self_lo || a >= g_self_hi) break;
    ++first;
  }
  int out = 0;
  for (int i = first; i < n && out < max_frames; ++i) frames[out++] = reinterpret_cast<uintptr_t>(raw[i]);
  return out;
}

}  // namespace

void capture_init() {
  dl_iterate_phdr(find_self, reinterpret_cast<void*>(&capture_init));
  loaded_objects_init();
  if (!cfi_walk_init()) log_once(Once::kUnwindFailed, "no memory for the unwind cache; stacks are walked by libunwind alone");
  // libunwind initialises itself here: as inside any unwind, its calls to
  // dl_iterate_phdr and pipe2 are the shim's to answer (hooks.cpp).
  t_unwinding = kCounted;
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  t_unwinding = kOutside;
}

void capture_fork_prepare() {
  if (!t_has_trace_cache && !g_trace_pool_maybe_held && t_unwinding == kOutside && !t_in_cfi) {
    void* frames[4];
    libunwind_backtrace(frames, 4);  // the child's only thread then owns a trace cache
  }
  g_fork_pending.store(1, std::memory_order_seq_cst);
  g_fork_wait_timed_out = false;
  if (t_unwinding == kEntering) {
    // A signal handler forking on a thread caught between the count and its
    // flag: whether the count includes this thread is unknown, so do not
    // wait (it could be for ourselves); the child records no stacks.
    g_fork_wait_timed_out = true;
    return;
  }
  const int self = t_unwinding == kCounted ? 1 : 0;
  uint64_t give_up = 0;
  for (;;) {
    const int left = g_unwind_left.load(std::memory_order_seq_cst);  // before the count: no wake-up lost
    if (unwinding_total() - self <= 0) break;
    const uint64_t now = mono_ns();
    if (!give_up) give_up = now + kForkWaitNs;
    if (now >= give_up) {
      // Counted again: this thread may itself have been off the CPU since.
      g_fork_wait_timed_out = unwinding_total() - self > 0;
      break;
    }
    const uint64_t nap = std::min<uint64_t>(give_up - now, 10'000'000);  // 10 ms: a wake-up missed costs no more
    struct timespec ts = {0, static_cast<long>(nap)};
    syscall(SYS_futex, reinterpret_cast<int*>(&g_unwind_left), FUTEX_WAIT_PRIVATE, left, &ts, nullptr, 0);
  }
}

void capture_fork_parent() {
  g_fork_pending.store(0, std::memory_order_seq_cst);
  syscall(SYS_futex, reinterpret_cast<int*>(&g_fork_pending), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

void capture_fork_child() {
  int others = g_trace_cache_threads.load(std::memory_order_relaxed) - (t_has_trace_cache ? 1 : 0);
  if (others > 0) g_trace_pool_maybe_held = true;
  if (g_fork_wait_timed_out) g_unwinder_unsafe = true;
  g_trace_cache_threads.store(t_has_trace_cache ? 1 : 0, std::memory_order_relaxed);
  for (auto& u : g_unwinding) u.n.store(0, std::memory_order_relaxed);  // counted threads do not exist here
  loaded_objects_after_fork_child();
  // This thread, if a signal handler forked while it was counted, is still
  // inside the unwinder. (One caught in kEntering may leave the count off by
  // one; that child never unwinds: g_unwinder_unsafe.)
  if (t_unwinding == kCounted) g_unwinding[thread_shard()].n.store(1, std::memory_order_relaxed);
  g_fork_pending.store(0, std::memory_order_seq_cst);
}

bool capture_in_progress() { return t_unwinding != 0; }

int capture_stack(uintptr_t* frames, int max_frames) { return unwind_frames(frames, max_frames); }

}  // namespace leakwatch::shim
