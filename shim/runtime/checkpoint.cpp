#include "shim/runtime/checkpoint.h"

#include <cerrno>

#include "shim/runtime/no_cancel.h"

namespace leakwatch::shim {

std::atomic<uint64_t> g_checkpoint_due_ns{0};

namespace {
CheckpointFn g_fn = nullptr;
// Far enough ahead that no other thread starts the same work while the
// winner runs it; the winner sets the real next due time.
constexpr uint64_t kClaimNs = 3600ull * 1000000000ull;
}  // namespace

void checkpoint_install(CheckpointFn fn, uint64_t first_due_ns) {
  g_fn = fn;
  checkpoint_set_due(first_due_ns ? first_due_ns : 1);
}

void checkpoint_run() {
  const uint64_t now = mono_ns();
  uint64_t due = g_checkpoint_due_ns.load(std::memory_order_relaxed);
  if (due == 0 || now < due || g_fn == nullptr) return;
  // One thread wins the checkpoint; the others go on at once.
  if (!g_checkpoint_due_ns.compare_exchange_strong(due, now + kClaimNs, std::memory_order_acq_rel)) return;
  int saved_errno = errno;  // the host's errno is the host's
  Guard guard;
  NoCancel no_cancel;  // cancelled in its I/O, the claim above would stand for an hour
  g_fn(now);
  errno = saved_errno;
}

}  // namespace leakwatch::shim
