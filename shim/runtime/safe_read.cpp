#include "shim/runtime/safe_read.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "shim/runtime/identity.h"

namespace leakwatch::shim {
namespace {
__thread int t_scopes __attribute__((tls_model("initial-exec")));
__thread int t_scope_fd __attribute__((tls_model("initial-exec"))) = -1;
}  // namespace

SafeReadScope::SafeReadScope() { ++t_scopes; }

SafeReadScope::~SafeReadScope() {
  if (--t_scopes == 0 && t_scope_fd >= 0) {
    ::close(t_scope_fd);
    t_scope_fd = -1;
  }
}

bool safe_read(uintptr_t addr, void* out, std::size_t n) {
  if (n == 0) return true;
  const bool scoped = t_scopes > 0;
  int fd = scoped ? t_scope_fd : -1;
  if (fd < 0) {
    fd = open_proc_self("mem");
    if (fd < 0) return false;
    if (scoped) {
      // A signal handler on this thread may have opened one meanwhile.
      if (t_scope_fd < 0) t_scope_fd = fd;
      else ::close(fd), fd = t_scope_fd;
    }
  }
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(out) + got, n - got, static_cast<off_t>(addr + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EIO: not mapped
    got += static_cast<std::size_t>(r);
  }
  if (!scoped) ::close(fd);
  return got == n;
}

}  // namespace leakwatch::shim
