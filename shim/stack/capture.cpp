#include "shim/stack/capture.h"

#include <atomic>
#include <dlfcn.h>
#include <sched.h>
#include <link.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "shim/runtime/log.h"

namespace leakwatch::shim {
namespace {

uintptr_t g_self_lo = 0, g_self_hi = 0;
std::atomic<int> g_unwinding{0};    // threads inside unw_backtrace
std::atomic<int> g_fork_pending{0};  // a fork is waiting for them

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

// The unwind itself; capture_stack() wraps it with the fork barrier.
int unwind_frames(uintptr_t* frames, int max_frames) {
  constexpr int kSkipMax = 16;  // the shim's own frames, at most
  void* raw[256 + kSkipMax];
  int want = max_frames + kSkipMax;
  if (want > static_cast<int>(sizeof raw / sizeof raw[0])) want = sizeof raw / sizeof raw[0];
  int n = unw_backtrace(raw, want);
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
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

void capture_fork_prepare() {
  g_fork_pending.store(1, std::memory_order_seq_cst);
  while (g_unwinding.load(std::memory_order_seq_cst) != 0) sched_yield();
}

void capture_fork_done() {
  g_unwinding.store(0, std::memory_order_relaxed);  // only matters in the child; 0 in the parent anyway
  g_fork_pending.store(0, std::memory_order_seq_cst);
}

int capture_stack(uintptr_t* frames, int max_frames) {
  // Enter, then check for a pending fork (Dekker-style with the forker:
  // either it sees us and waits, or we see it and step back).
  for (;;) {
    g_unwinding.fetch_add(1, std::memory_order_seq_cst);
    if (!g_fork_pending.load(std::memory_order_seq_cst)) break;
    g_unwinding.fetch_sub(1, std::memory_order_seq_cst);
    for (int i = 0; g_fork_pending.load(std::memory_order_relaxed); ++i) {
      if (i > 200000) return 0;  // a fork that never ends: keep the sample, without a stack
      sched_yield();
    }
  }
  int depth = unwind_frames(frames, max_frames);
  g_unwinding.fetch_sub(1, std::memory_order_seq_cst);
  return depth;
}

}  // namespace leakwatch::shim
