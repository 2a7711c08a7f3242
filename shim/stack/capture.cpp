#include "shim/stack/capture.h"

#include <dlfcn.h>
#include <link.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "shim/runtime/log.h"

namespace leakwatch::shim {
namespace {

uintptr_t g_self_lo = 0, g_self_hi = 0;

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

}  // namespace

void capture_init() {
  dl_iterate_phdr(find_self, reinterpret_cast<void*>(&capture_init));
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

int capture_stack(uintptr_t* frames, int max_frames) {
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

}  // namespace leakwatch::shim
