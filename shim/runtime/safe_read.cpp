#include "shim/runtime/safe_read.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "shim/runtime/identity.h"

namespace leakwatch::shim {

bool safe_read(uintptr_t addr, void* out, std::size_t n) {
  if (n == 0) return true;
  int fd = open_proc_self("mem");
  if (fd < 0) return false;
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(out) + got, n - got, static_cast<off_t>(addr + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EIO: not mapped
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return got == n;
}

}  // namespace leakwatch::shim
