#include "shim/runtime/safe_read.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/runtime/identity.h"
#include "shim/runtime/own_fds.h"

namespace leakwatch::shim {
namespace {
__thread int t_scopes __attribute__((tls_model("initial-exec")));
__thread int t_scope_fd __attribute__((tls_model("initial-exec"))) = -1;
__thread int t_probe[2] __attribute__((tls_model("initial-exec"))) = {-1, -1};

// Clears the slot before closing: a signal handler that opens a scope in
// between must not reuse (and then close) a number the host may own by then.
void release(int* slot) {
  const int fd = *slot;
  *slot = -1;
  asm volatile("" ::: "memory");
  if (fd >= 0) own_close(fd);
}
}  // namespace

SafeReadScope::SafeReadScope() { ++t_scopes; }

SafeReadScope::~SafeReadScope() {
  if (--t_scopes == 0) {
    release(&t_scope_fd);
    release(&t_probe[0]);
    release(&t_probe[1]);
  }
}

namespace {

// The probe pipe: this scope's, or a fresh one (closed by pipe_done).
bool pipe_get(int fds[2]) {
  fds[0] = t_probe[0], fds[1] = t_probe[1];
  if (fds[1] >= 0) return true;
  // own_pipe goes through syscall(): the shim's pipe2 hook refuses libunwind's own pipe.
  if (own_pipe(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  if (t_scopes > 0 && t_probe[1] < 0) {
    t_probe[0] = fds[0];
    t_probe[1] = fds[1];
  } else if (t_scopes > 0) {  // a signal handler on this thread made one meanwhile
    own_close(fds[0]), own_close(fds[1]);
    fds[0] = t_probe[0], fds[1] = t_probe[1];
  }
  return true;
}

void pipe_done(const int fds[2]) {
  if (t_scopes == 0 || fds[1] != t_probe[1]) own_close(fds[0]), own_close(fds[1]);
}

void pipe_drain(int fd) {
  char sink[256];
  while (::read(fd, sink, sizeof sink) > 0) {
  }
}

// Copies through a pipe: the kernel copies from the address as the program
// would read it (EFAULT, not a fault). For a process that may not open its
// own /proc/self/mem: after it changed user (setuid clears the dumpable
// flag, and its /proc files then belong to root). A pipe of its own, not
// the probe pipe, where readable() leaves bytes (a signal handler's too).
bool pipe_read(uintptr_t addr, void* out, std::size_t n) {
  int fds[2];
  if (own_pipe(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  std::size_t got = 0;
  while (got < n) {
    const std::size_t chunk = n - got < 4096 ? n - got : 4096;
    ssize_t w = ::syscall(SYS_write, fds[1], reinterpret_cast<const void*>(addr + got), chunk);
    if (w <= 0) break;
    ssize_t r = ::read(fds[0], static_cast<char*>(out) + got, static_cast<std::size_t>(w));
    if (r != w) break;
    got += static_cast<std::size_t>(w);
  }
  own_close(fds[0]), own_close(fds[1]);
  return got == n;
}

}  // namespace

bool readable(uintptr_t addr) {
  int fds[2];
  if (!pipe_get(fds)) return false;
  ssize_t r;
  for (int tries = 0; tries < 3; ++tries) {
    r = ::syscall(SYS_write, fds[1], reinterpret_cast<const void*>(addr), 1);
    if (r >= 0 || errno != EAGAIN) break;
    pipe_drain(fds[0]);  // full: drain, then again
  }
  pipe_done(fds);
  return r == 1;
}

bool safe_read(uintptr_t addr, void* out, std::size_t n) {
  if (n == 0) return true;
  const bool scoped = t_scopes > 0;
  int fd = scoped ? t_scope_fd : -1;
  if (fd < 0) {
    fd = open_proc_self("mem");
    if (fd < 0) return errno == EACCES && pipe_read(addr, out, n);
    if (scoped) {
      // A signal handler on this thread may have opened one meanwhile.
      if (t_scope_fd < 0) t_scope_fd = fd;
      else own_close(fd), fd = t_scope_fd;
    }
  }
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(out) + got, n - got, static_cast<off_t>(addr + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EIO: not mapped
    got += static_cast<std::size_t>(r);
  }
  if (!scoped) own_close(fd);
  return got == n;
}

}  // namespace leakwatch::shim
