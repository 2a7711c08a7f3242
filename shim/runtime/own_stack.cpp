#include "shim/runtime/own_stack.h"

#include <sys/mman.h>
#include <ucontext.h>

#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {
namespace {

constexpr std::size_t kStackBytes = 512 * 1024;
constexpr std::size_t kGuardBytes = 4096;
char* g_stack = nullptr;

void (*g_fn)(void*) = nullptr;
void* g_arg = nullptr;

void trampoline() { g_fn(g_arg); }

}  // namespace

bool own_stack_init() {
  if (g_stack) return true;
  auto* mem = static_cast<char*>(map_pages(kStackBytes + kGuardBytes, /*noreserve=*/true));
  if (!mem) return false;
  ::mprotect(mem, kGuardBytes, PROT_NONE);  // an overflow faults instead of writing over other memory
  g_stack = mem + kGuardBytes;
  return true;
}

void run_on_own_stack(void (*fn)(void*), void* arg) {
  ucontext_t caller, callee;
  if (!g_stack || getcontext(&callee) != 0) {
    fn(arg);
    return;
  }
  g_fn = fn;
  g_arg = arg;
  callee.uc_stack.ss_sp = g_stack;
  callee.uc_stack.ss_size = kStackBytes;
  callee.uc_link = &caller;
  makecontext(&callee, trampoline, 0);
  if (swapcontext(&caller, &callee) != 0) fn(arg);
}

}  // namespace leakwatch::shim
