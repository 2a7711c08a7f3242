// The dump writer: turns the recorder's tables into a file.
//
// Dumps are written by whichever thread calls dump_now(): a host thread at
// a checkpoint (dump/schedule.h), or the exiting thread for the final dump
// (library destructor). The work runs on the shim's own stack
// (runtime/own_stack.h), holding the re-entrancy guard; it takes no lock a
// host thread could hold (no malloc, no stdio, no loader lock), only the
// dump lock, which it never waits for: a second dump at the same moment is
// simply skipped.
//
// Files are written to a temp name (O_EXCL|O_NOFOLLOW, mode 0600) and
// renamed, so a process killed at any instant leaves only complete dumps.
// A failing directory is reported once and retried at every interval.
// Retention (dump/retention.h) bounds the files per process in number and
// bytes while keeping the whole run covered.
//
// Thread-safety: any thread; dump_now() serialises on the dump lock.
// Never calls malloc.
#pragma once

#include <cstddef>
#include <sys/types.h>

#include "shim/dump/format.h"
#include "shim/dump/payload.h"

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

bool writer_init();  // reserves retention state, the payload tables and the dump stack
// Writes one dump now. Returns true if a file was written; false when it
// failed, when another thread is writing one, or after the final dump.
bool dump_now(DumpReason reason);
// The highest resident size recorded by a dump of this process (0: none yet).
uint64_t writer_max_rss();
// In a fork child: forget the parent's files; a dump the parent was writing
// at the instant of fork is abandoned.
void writer_after_fork_child();

}  // namespace leakwatch::shim
