#include "shim/runtime/safe_read.h"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim/runtime/identity.h"

namespace leakwatch::shim {
namespace {
std::atomic<bool> g_vm_readv_refused{false};

bool read_proc_mem(uintptr_t addr, void* out, std::size_t n) {
  int fd = open_proc_self("mem");
  if (fd < 0) return false;
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(out) + got, n - got, static_cast<off_t>(addr + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return got == n;
}
}  // namespace

bool safe_read(uintptr_t addr, void* out, std::size_t n) {
  if (n == 0) return true;
  if (!g_vm_readv_refused.load(std::memory_order_relaxed)) {
    struct iovec local{out, n}, remote{reinterpret_cast<void*>(addr), n};
    // This thread's id, not the process's: once main() has ended with
    // pthread_exit the process id names a thread without an address space.
    ssize_t r = ::process_vm_readv(static_cast<pid_t>(::syscall(SYS_gettid)), &local, 1, &remote, 1, 0);
    if (r == static_cast<ssize_t>(n)) return true;
    if (r >= 0 || errno == EFAULT) return false;  // really not mapped
    g_vm_readv_refused.store(true, std::memory_order_relaxed);  // EPERM, ENOSYS: seccomp
  }
  return read_proc_mem(addr, out, n);
}

}  // namespace leakwatch::shim
