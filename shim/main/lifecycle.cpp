// The composition root of the shim: start-up, the fork policy and the final
// dump, wiring the stages together. Nothing includes this file; it
// includes every stage.
//
//   constructor: resolve the real functions, read the configuration, say
//                whether this process is profiled, reserve the tables,
//                install the checkpoint (dump/schedule.h).
//   fork:        the child is a process of its own (new identity, files and
//                schedule) and accounts for what it allocates from the fork
//                on (the tables wiped on fork: record/stack_table.h).
//   destructor:  the final dump, at normal exit.
//
// The fork handlers hold no lock across fork: a prepare handler that takes
// a lock the hooks also take inverts the order with glibc's own fork locks
// (stdio, malloc), which fork takes after the handlers while threads
// inside libc holding a FILE lock call malloc. Instead the child repairs
// what a thread that vanished at the fork may have left half-done.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <link.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "shim/dump/schedule.h"
#include "shim/dump/writer.h"
#include "shim/record/real_functions.h"
#include "shim/record/granule_marks.h"
#include "shim/record/recorder.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/identity.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/own_fds.h"
#include "shim/runtime/proc_memory.h"
#include "shim/stack/capture.h"

namespace leakwatch::shim {
namespace {

const char* base_name(const char* path) {
  const char* b = std::strrchr(path, '/');
  return b ? b + 1 : path;
}

void before_fork() {
  ++t_state.guard;
  capture_fork_prepare();  // no thread inside the unwinder at the instant of fork
  // After: a thread in the unwinder may be opening a file, and that open
  // would wait for this fork.
  own_fds_before_fork();
}

void after_fork_parent() {
  capture_fork_parent();
  own_fds_after_fork_parent();
  --t_state.guard;
}

void after_fork_child() {
  own_fds_after_fork_child();
  capture_fork_child();
  g_stacks.after_fork_child();
  g_samples.after_fork_child();
  g_mappings.after_fork_child();
  reset_all_once();
  identity_after_fork(&g_identity);
  writer_after_fork_child();
  schedule_after_fork_child();
  --t_state.guard;
}

// The next allocator's library, when it is not libc's (jemalloc,
// tcmalloc): the mappings it makes are its heap, which the allocation
// records already count.
struct Covering {
  uintptr_t addr, lo, hi;
};
int find_covering(dl_phdr_info* info, size_t, void* arg) {
  auto* c = static_cast<Covering*>(arg);
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    lo = std::min<uintptr_t>(lo, info->dlpi_addr + ph.p_vaddr);
    hi = std::max<uintptr_t>(hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
  }
  if (c->addr < lo || c->addr >= hi) return 0;
  c->lo = lo, c->hi = hi;
  return 1;
}

void exclude_allocator_mappings() {
  Covering malloc_obj{reinterpret_cast<uintptr_t>(g_real.malloc), 0, 0};
  Covering mmap_obj{reinterpret_cast<uintptr_t>(g_real.mmap), 0, 0};
  dl_iterate_phdr(find_covering, &malloc_obj);
  dl_iterate_phdr(find_covering, &mmap_obj);
  if (malloc_obj.hi && malloc_obj.lo != mmap_obj.lo) recorder_set_allocator_range(malloc_obj.lo, malloc_obj.hi);
}

void make_absolute(char* dir) {
  if (dir[0] == '/') return;
  char cwd[kMaxPath];
  if (!getcwd(cwd, sizeof cwd)) return;
  std::size_t a = std::strlen(cwd), b = std::strlen(dir);
  if (a + 1 + b + 1 > kMaxPath) return;
  std::memmove(dir + a + 1, dir, b + 1);
  std::memcpy(dir, cwd, a);
  dir[a] = '/';
}

// Under a finite RLIMIT_AS (ulimit -v) every byte the shim reserves comes
// off the host's limit, and since Linux 4.7 every private writable mapping
// off RLIMIT_DATA (ulimit -d): the shim holds at most an eighth of the
// lower one (internal_alloc.h enforces it, symbol files included), with
// smaller tables when that is needed, and stays off when even the smallest
// do not fit. Besides the recorder's tables (sized here) it reserves the
// payload's per-stack totals and about 12 MiB more, measured: two
// loaded-objects snapshots during a rebuild (4.7 MiB each), its own stack,
// the unwind cache, the module list, and a dump's scratch chunks; the
// files it maps for their symbols get what is left.
constexpr uint64_t kOtherReserve = 16u << 20;

uint64_t address_limit() {
  uint64_t limit = UINT64_MAX;
  for (int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    rlimit r{};
    if (getrlimit(resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY) limit = std::min<uint64_t>(limit, r.rlim_cur);
  }
  return limit;
}

bool size_tables(RecorderSizes* sizes, uint64_t* limit_out) {
  *sizes = recorder_sizes(g_config.sample_bytes);
  *limit_out = address_limit();
  if (*limit_out == UINT64_MAX) return true;
  const uint64_t budget = *limit_out / 8;
  set_address_budget(budget);
  auto needed = [&] { return recorder_reserve_bytes(*sizes) + sizeof(uint64_t) * sizes->max_stacks + kOtherReserve; };
  while (needed() > budget)
    if (!recorder_shrink(sizes)) return false;
  return true;
}

void lifecycle_start() {
  int expected = kUninitialized;
  if (!g_state.compare_exchange_strong(expected, kInitializing)) return;
  Guard guard;
  log_init();
  resolve_real_functions();

  ConfigWarnings warnings;
  parse_config([](const char* name) -> const char* { return getenv(name); }, &g_config, &warnings);
  identity_collect_name(&g_identity);
  bool selected = !g_config.disable && (match_globs(g_config.match, g_identity.exe_base) ||
                                        match_globs(g_config.match, base_name(g_identity.argv0)));
  // Warnings only from processes we profile: a shell wrapping the target
  // should not repeat them.
  if (selected || g_config.disable)
    for (int i = 0; i < warnings.count; ++i) log_line("%s", warnings.text[i]);
  if (!selected) {
    g_state.store(kDisabled, std::memory_order_release);
    return;
  }
  identity_collect_rest(&g_identity);
  make_absolute(g_config.dir);
  RecorderSizes sizes;
  uint64_t as_limit;
  if (!size_tables(&sizes, &as_limit)) {
    log_once(Once::kInternalOom,
             "RLIMIT_AS/RLIMIT_DATA is %lu MiB; an eighth of it is too little for its tables; profiling is off",
             static_cast<unsigned long>(as_limit >> 20));
    g_state.store(kDisabled, std::memory_order_release);
    return;
  }
  if (!recorder_init(sizes) || !writer_init()) {
    // The tables go back only when no other thread can be in a hook that
    // reads them (a thread started by another library's constructor).
    ProcMemory self;
    if (read_proc_memory(&self) && self.threads == 1) recorder_release();
    log_once(Once::kInternalOom, "cannot reserve memory for its tables; profiling is off");
    g_state.store(kDisabled, std::memory_order_release);
    return;
  }
  capture_init();
  exclude_allocator_mappings();
  if (dense_mode()) granule_mark_all();
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  g_state.store(kEnabled, std::memory_order_release);
  schedule_start();
}

void lifecycle_finish() {
  if (!enabled()) return;
  dump_now(DumpReason::kFinal);
}

}  // namespace
}  // namespace leakwatch::shim

// As early and as late as a preloaded library gets.
__attribute__((constructor(101))) static void leakwatch_start() { leakwatch::shim::lifecycle_start(); }
__attribute__((destructor(101))) static void leakwatch_finish() { leakwatch::shim::lifecycle_finish(); }
