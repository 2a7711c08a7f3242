// The dump directory as a whole stays within LEAKWATCH_DIR_MAX_BYTES.
//
// Retention (dump/retention.h) bounds each process; nothing else bounded
// the directory. A pod in a crash loop, a prefork server with a backend
// per connection, or a CI job whose every `make`, `sh` and `grep` inherits
// LD_PRELOAD leaves a few dumps per process, thousands of processes a day:
// without a bound they fill the volume (a tmpfs counts against the
// container's memory limit). Temp files of processes killed mid-write
// would pile up the same way.
//
// After writing a dump, a process sometimes looks at the whole directory:
// with probability proportional to the bytes it has written (on average
// once per budget/64 bytes, counted in whole 4 KiB blocks), so scans cost
// in proportion to what is written and a one-dump process rarely scans;
// the directory overshoots the budget by more than k/64 of it with
// probability about e^-(k+8). When the directory holds more than the
// budget, the dumps of processes that have ended go first, then those of
// live ones (an idle service writes nothing for a while), each least
// recently written first, a process's files all together, until it holds
// at most 7/8 of it. The scanning process's own files are never touched
// (retention manages them), nor is a file whose name is not exactly a
// dump's. A temp file older than ten minutes whose process has ended (or
// older than a day) was left by a killed writer: removed. Reading the
// directory and removing files take at most 20 ms each per scan (it runs
// on a host thread); a larger or slower directory is trimmed among what
// was read. Not under a seccomp filter (getdents64 and unlinkat are in
// common allowlists, but a stricter one could kill the host for them).
//
// Thread-safety: writer only (under the dump lock). Never calls malloc
// (the scan's memory comes from the caller's arena).
#pragma once

#include <cstddef>
#include <cstdint>

#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

struct DirFile {
  uint64_t owner;     // hash of "exe.pid.instance": one process's files
  uint64_t bytes;
  int64_t mtime_ns;
  const char* name;   // in the scan's arena
  bool own;           // written by this process
  bool tmp;           // a temp file (a dump being written, or left by a killed writer)
  bool stale_tmp;     // a killed writer's temp file (dir_budget.cpp)
  bool ended;         // its process is known to have ended (its pid is not in use)
  bool evict;         // out: remove it
};

constexpr int64_t kStaleTmpNs = 600ll * 1000000000ll;

// Marks the files to remove so that the rest fit in `keep_bytes`: stale
// temp files, then the dumps of whole processes, ended ones first, each
// least recently written first; never `own` files, never a temp file still being written.
// Reorders files. Returns the bytes that remain.
uint64_t choose_evictions(DirFile* files, std::size_t n, uint64_t keep_bytes, Arena* scratch);

// Called by the writer after each dump it wrote (`bytes` long): scans and
// trims the directory when this write's share of the budget says so.
// `own_prefix`: the dump file names of this process up to the sequence
// number ("exe.pid.instance."). Returns the number of files removed.
int dir_budget_after_write(const char* dir, const char* own_prefix, uint64_t bytes, uint64_t budget,
                           uint64_t* rng, Arena* scratch);

// Scans now regardless of the odds (tests).
int dir_budget_trim(const char* dir, const char* own_prefix, uint64_t budget, Arena* scratch);

}  // namespace leakwatch::shim
