// The dump writer: one thread, signals blocked, holding the re-entrancy
// guard for its whole life, wakes every LEAKWATCH_INTERVAL seconds (even
// when the host is idle) and writes a self-contained snapshot. The final
// dump is written by the library destructor at normal exit.
//
// Files are written to a temp name (O_EXCL|O_NOFOLLOW, mode 0600) and
// renamed, so a process killed at any instant leaves only complete dumps.
// A failing directory is reported once and retried at every interval.
// Retention: at most LEAKWATCH_MAX_DUMPS files per process; when over, every
// other file of the older half is removed, so the whole run stays covered
// at a coarser grain.
//
// Thread-safety: dump_now() serialises on the dump lock. Never calls malloc.
#pragma once

#include <cstddef>
#include <sys/types.h>

#include "shim/dump/format.h"
#include "shim/runtime/spinlock.h"

namespace leakwatch::shim {

// I/O seam: tests replace these to inject EACCES, ENOSPC, short writes.
struct FileOps {
  int (*open)(const char* path, int flags, mode_t mode);
  ssize_t (*write)(int fd, const void* buf, size_t n);
  int (*close)(int fd);
  int (*rename)(const char* from, const char* to);
  int (*unlink)(const char* path);
  int (*mkdir)(const char* path, mode_t mode);
};
extern FileOps g_file_ops;

using leakwatch::format::kMaxRecords;  // per dump; the rest fold into "[other]"

bool writer_init();   // allocates retention state; call before writer_start
bool writer_start();  // starts the periodic thread
// Writes one dump now. Returns true if a file was written.
bool dump_now(bool final_dump);
SpinLock& dump_lock();
// In a fork child: forget the parent's files and start a new thread.
void writer_after_fork_child();

}  // namespace leakwatch::shim
