#include "shim/stack/stack_bounds.h"

#include <cstring>

#include "shim/runtime/clock.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/no_cancel.h"
#include "shim/runtime/proc_maps.h"

extern "C" void* __libc_stack_end;  // glibc's loader: the initial stack pointer

namespace leakwatch::shim {
namespace {

constexpr uint64_t kRelookNs = 1000000000ull;
constexpr std::size_t kScratch = 64 * 1024;
constexpr uintptr_t kPage = 4096;

// Zero in a new thread (glibc clears static TLS), so nothing is inherited
// from a thread that had the same stack block before.
__thread uintptr_t t_lo __attribute__((tls_model("initial-exec")));
__thread uintptr_t t_hi __attribute__((tls_model("initial-exec")));
__thread uint64_t t_next_look __attribute__((tls_model("initial-exec")));
__thread bool t_last_ok __attribute__((tls_model("initial-exec")));

struct Look {
  uintptr_t sp;
  uintptr_t tls;  // an address in this thread's static TLS
  uintptr_t main_top;  // the stack pointer the program started with
  uintptr_t prev_end = 0;
  bool prev_guard = false;
  uintptr_t lo = 0, hi = 0;
};

void on_mapping(const MapLine& m, void* arg) {
  auto* k = static_cast<Look*>(arg);
  const bool below_is_guard = k->prev_guard && k->prev_end == m.start;
  k->prev_end = m.end;
  k->prev_guard = std::strncmp(m.perms, "---", 3) == 0;
  if (k->sp < m.start || k->sp >= m.end || m.perms[0] != 'r' || m.perms[1] != 'w') return;
  if (std::strcmp(m.path, "[stack]") == 0 || (k->main_top >= m.start && k->main_top < m.end)) {
    // The main thread's stack (one a tool such as valgrind made is not
    // named, but holds the start-up stack pointer too).
    k->lo = m.start, k->hi = m.end;
  } else if (k->tls >= m.start && k->tls < m.end && k->tls > k->sp) {
    // Frames lie below the static TLS. Without a guard page the mapping
    // may have merged with a neighbour below that can go away.
    k->hi = k->tls;
    k->lo = below_is_guard ? m.start : (k->sp & ~(kPage - 1));
  }
}

bool look(uintptr_t sp) {
  NoCancel no_cancel;  // open and read are cancellation points
  auto* buf = static_cast<char*>(map_pages(kScratch));
  if (!buf) return false;
  Look k{sp, reinterpret_cast<uintptr_t>(&t_lo), reinterpret_cast<uintptr_t>(__libc_stack_end)};
  bool ok = for_each_mapping(buf, kScratch, on_mapping, &k) && k.hi > k.lo;
  unmap_pages(buf, kScratch);
  if (!ok) return false;
  // A range learnt before on the same stack still holds: keep the union.
  if (t_hi == k.hi && t_lo < k.lo) k.lo = t_lo;
  t_lo = k.lo;
  t_hi = k.hi;
  return true;
}

}  // namespace

bool own_stack_holds(uintptr_t lo, uintptr_t hi, uintptr_t sp) {
  if (__builtin_expect(lo >= t_lo && hi <= t_hi && lo < hi, 1)) return true;
  if (lo >= hi) return false;
  // On the part already known: its top does not move, and a read below the
  // stack pointer is none of a frame's. Not worth a look.
  if (t_hi != 0 && sp >= t_lo && sp < t_hi) return false;
  // Looked again at once when the stack has grown below what is known (a
  // stack pointer of the walk is in use, so mapped); otherwise, and after
  // a look that found no own stack (a coroutine's), once a second.
  const uint64_t now = mono_coarse_ns();
  const bool grown = t_last_ok && sp < t_lo;
  if (!grown && now < t_next_look) return false;
  t_next_look = now + kRelookNs;
  t_last_ok = look(sp);
  return t_last_ok && lo >= t_lo && hi <= t_hi;
}

}  // namespace leakwatch::shim
