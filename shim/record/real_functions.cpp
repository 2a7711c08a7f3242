#include "shim/record/real_functions.h"

#include <atomic>
#include <cstring>
#include <dlfcn.h>
#include <unistd.h>

#include "shim/record/granule_marks.h"
#include "shim/record/recorder.h"

namespace leakwatch::shim {

alignas(4096) char g_bootstrap_arena[kBootstrapSize];

namespace {
// Until the real functions are resolved the hooks' fast paths land here, so
// they need no null test: malloc and realloc go to the slow paths (which
// resolve, or serve the bootstrap arena); a free of a bootstrap block never
// reaches free.
void* unresolved_malloc(std::size_t n) { return alloc_slow(Op::kMalloc, n, 0); }
void unresolved_free(void*) {}
void* unresolved_realloc(void* p, std::size_t n) { return realloc_slow(p, n); }
std::size_t unresolved_usable_size(void* p) { return in_bootstrap(p) ? bootstrap_size(p) : 0; }
constexpr RealFunctions unresolved() {
  RealFunctions r{};
  r.malloc = &unresolved_malloc;
  r.free = &unresolved_free;
  r.realloc = &unresolved_realloc;
  r.malloc_usable_size = &unresolved_usable_size;
  return r;
}
}  // namespace

constinit RealFunctions g_real = unresolved();
constinit bool g_glibc_chunks = false;
constinit std::size_t g_glibc_realloc_below = 0;

__attribute__((noinline)) std::size_t other_usable_size(void* p) { return g_real.malloc_usable_size(p); }

namespace {
std::atomic<std::size_t> g_bootstrap_used{0};
std::atomic<int> g_resolved{0};  // 0 no, 1 in progress, 2 done

constexpr std::size_t kPages = kBootstrapSize / 4096;
std::size_t g_boot_sizes[kPages];  // requested size, by first page of each block
}  // namespace

// Blocks start on page boundaries, and their granules are marked for good, so
// free() sends them to its slow path (which never passes them on).
void* bootstrap_alloc(std::size_t n, std::size_t align) {
  if (align > 4096) return nullptr;
  std::size_t pages = (n + 4095) / 4096;
  if (pages == 0) pages = 1;
  std::size_t first = g_bootstrap_used.fetch_add(pages, std::memory_order_relaxed);
  if (first + pages > kPages) return nullptr;
  g_boot_sizes[first] = n;
  char* p = g_bootstrap_arena + first * 4096;  // static storage: already zeroed, never reused
  granule_mark_sticky(p);
  return p;
}

std::size_t bootstrap_size(const void* p) {
  return g_boot_sizes[static_cast<std::size_t>(static_cast<const char*>(p) - g_bootstrap_arena) / 4096];
}

namespace {
// Whether `r` is glibc's allocator, whose chunk headers glibc_usable_size()
// can read: malloc comes from libc.so.6 itself, and blocks of the sizes of
// tcache, fastbin, small and large bins agree with malloc_usable_size().
// Not an mmapped block: freeing one raises glibc's dynamic mmap threshold,
// which would change how the host's heap behaves (unit.glibc_chunks_test
// checks that case).
bool is_glibc_heap(const RealFunctions& r) {
  Dl_info info{};
  if (r.malloc_usable_size == &unresolved_usable_size || dladdr(reinterpret_cast<void*>(r.malloc), &info) == 0 ||
      info.dli_fname == nullptr)
    return false;
  const char* base = std::strrchr(info.dli_fname, '/');
  base = base ? base + 1 : info.dli_fname;
  if (std::strncmp(base, "libc.so", 7) != 0) return false;
  bool agree = true;
  for (std::size_t n : {std::size_t{1}, std::size_t{24}, std::size_t{200}, std::size_t{4000}, std::size_t{70000}}) {
    void* p = r.malloc(n);
    if (p == nullptr) return false;
    agree = agree && glibc_usable_size(p) == r.malloc_usable_size(p);
    r.free(p);
  }
  return agree;
}
}  // namespace

bool real_functions_ready() { return g_resolved.load(std::memory_order_acquire) == 2; }

bool resolve_real_functions() {
  int expected = 0;
  if (!g_resolved.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    // Another thread (or this one, re-entered from dlsym) is resolving.
    return expected == 2;
  }
  RealFunctions r;
#define LW_HOOK(sym, ret, params) r.sym = reinterpret_cast<ret(*) params>(dlsym(RTLD_NEXT, #sym));
#include "shim/runtime/hooked_symbols.def"
#undef LW_HOOK
  if (!r.malloc || !r.free || !r.calloc || !r.realloc) {
    static const char msg[] = "leakwatch: cannot find the real malloc; the process cannot run\n";
    (void)!::write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  // Never null (the hooks call it without a test): an allocator without it
  // keeps the stub (0 for every block), and realloc's growth then goes
  // uncharged: a block is sampled on its first size only.
  if (!r.malloc_usable_size) r.malloc_usable_size = &unresolved_usable_size;
  g_glibc_chunks = is_glibc_heap(r);
  g_glibc_realloc_below = g_glibc_chunks ? kGlibcHeapBelow : 0;
  g_real = r;
  g_resolved.store(2, std::memory_order_release);
  return true;
}

}  // namespace leakwatch::shim
