// The descriptors the shim holds open for a moment: a /proc file being
// read, a dump being written, a probe pipe. A fork copies them into the
// child, where the thread that would close them does not exist; a child
// that lives for days (a prefork worker, a BGSAVE child, a database
// backend) would keep them all its life, pinning a dump the parent's
// retention deletes. So every one is registered with the thread holding
// it, and the child closes the ones of the threads it did not inherit.
// The forking thread's own stay open: code a signal handler interrupted
// (and then forked from) still uses and closes them.
//
// fork() copies the descriptor table and the memory at different moments;
// shim/runtime/own_fds.cpp says how the two are kept in step: a close
// during a fork is deferred to its end, and opens and forks wait (bounded)
// for each other. A child closes a descriptor only while it still is the
// file the shim opened, never one of the host's. A full registry (more
// than kOwnFdSlots at once) leaves the surplus unregistered.
//
// Thread-safety: any thread. Async-signal-safe. Never allocates.
#pragma once

#include <sys/types.h>

namespace leakwatch::shim {

constexpr int kOwnFdSlots = 256;

int own_open(const char* path, int flags, mode_t mode = 0);
int own_openat(int dir, const char* path, int flags, mode_t mode = 0);
int own_pipe(int fds[2], int flags);  // pipe2 through syscall() (the shim hooks pipe2)
int own_close(int fd);

// The fork handlers (main/lifecycle.cpp): before, in the parent after,
// and in the child.
void own_fds_before_fork();
void own_fds_after_fork_parent();
// In a fork child: closes the registered descriptors of every thread but
// this one. Returns how many (tests).
int own_fds_after_fork_child();

}  // namespace leakwatch::shim
