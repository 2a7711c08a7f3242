// Directories kept open across a change of the process's view of the
// filesystem: /proc, and the dump directory.
//
// Why: a process can lose both after start. A tool that mounts a /proc for
// a child pid namespace in a mount namespace it shares (unshare
// --mount-proc), a sandbox that mounts over /proc, a daemon that chroots
// (haproxy, postfix, named, vsftpd): paths then name other files or none
// (a /proc of another pid namespace has no "self" for this process).
// Relative to a directory opened before the change, they still reach what
// they did ("self" is whoever asks, as that /proc numbers it: fork children
// included).
//
// Kept only by a process about to change its view (the unshare, setns,
// mount and chroot hooks call keep_dirs_before_fs_change): a kept
// descriptor shows in /proc/self/fd, which test suites compare. Placed
// high, out of the way of a host that counts on its next descriptor's
// number, and not under a tight RLIMIT_NOFILE. A host that closes one
// (closefrom) loses that fallback, noticed by the descriptor's device and
// inode before each use, never by using a file of the host's.
//
// Thread-safety: any thread; each directory is kept at most once per
// process. Async-signal-safe. Never allocates.
#pragma once

namespace leakwatch::shim {

// Keeps /proc and `dump_dir` (absolute) open, once.
void keep_dirs_before_fs_change(const char* dump_dir);

// The kept descriptors (O_PATH), or -1 when none is kept or it is no
// longer the directory kept.
int kept_proc_root();
int kept_dump_dir();

}  // namespace leakwatch::shim
