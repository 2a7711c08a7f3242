// Who this process is, for dumps that must make sense after it is gone:
// exe, pid, ppid, start time, host, container, namespaces, and a random
// instance id that keeps file names unique when pids repeat across
// containers sharing one volume.
//
// Thread-safety: collect once at start, refresh in a fork child before it
// runs any other thread. Never allocates (reads /proc into static buffers).
#pragma once

#include <cstdint>

namespace leakwatch::shim {

struct Identity {
  int pid;
  int ppid;
  uint64_t instance;         // random per process (and per fork child)
  uint64_t start_wall_ns;    // process start, wall clock
  uint64_t start_mono_ns;    // when the shim started, CLOCK_MONOTONIC
  uint64_t pid_ns;           // inode of /proc/self/ns/pid (0 if unknown)
  uint64_t mnt_ns;
  char exe[4096];            // /proc/self/exe target
  char exe_base[256];        // its basename
  char argv0[1024];
  char cmdline[2048];        // NUL-separated args joined by spaces, truncated
  char hostname[256];
  char container_id[128];    // "" when /proc does not tell
  char boot_id[40];          // the kernel's boot id: monotonic times compare only within one boot
};

extern Identity g_identity;

// What LEAKWATCH_MATCH looks at (pid, executable, command line): every
// process the shim is preloaded into pays it.
void identity_collect_name(Identity* id);
// The rest (start time, host, container, boot id, namespaces: seven /proc
// files), only in processes the shim profiles.
void identity_collect_rest(Identity* id);
inline void identity_collect(Identity* id) {
  identity_collect_name(id);
  identity_collect_rest(id);
}
// In a fork child: a new pid, parent, instance id and start time; the rest
// (executable, command line, host, container, namespaces) is the parent's.
// No file is read: most fork children exec or exit at once.
void identity_after_fork(Identity* id);

// Reads a whole small file into buf (NUL-terminated); returns bytes or -1.
long read_small_file(const char* path, char* buf, long cap);

// Opens /proc/thread-self/NAME (else /proc/self/NAME, before Linux 3.17)
// read-only. Not /proc/self: once main() has ended with pthread_exit, the
// process's /proc/self files (maps, status, mem) read through the exited
// thread and come back empty.
// When /proc is no longer this process's (a mount over it, a /proc of
// another pid namespace, a chroot), opens relative to the /proc it had
// before, if it was kept (runtime/kept_dirs.h).
int open_proc_self(const char* name);
// read_small_file of open_proc_self(name).
long read_proc_self(const char* name, char* buf, long cap);

// Finds a container id in cgroup / mountinfo text ("" if none). Exposed for tests.
void find_container_id(const char* cgroup, const char* mountinfo, char* out, int cap);

}  // namespace leakwatch::shim
