#include "shim/runtime/kept_dirs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace leakwatch::shim {
namespace {

struct Kept {
  int claimed;  // kept (or tried) once per process
  int fd;       // published after dev and ino
  dev_t dev;
  ino_t ino;
};

Kept g_proc = {0, -1, 0, 0};
Kept g_dump = {0, -1, 0, 0};

long descriptor_limit() {
  struct rlimit r;
  return getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY ? static_cast<long>(r.rlim_cur) : 1024;
}

void keep(Kept* k, const char* path, bool procfs) {
  if (__atomic_exchange_n(&k->claimed, 1, __ATOMIC_ACQ_REL)) return;
  const long limit = descriptor_limit();
  if (limit < 64) return;  // there the host needs every descriptor
  int fd = ::open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  struct statfs fs;
  struct stat st;
  if ((procfs && (::fstatfs(fd, &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC)) || ::fstat(fd, &st) != 0) {
    ::close(fd);
    return;
  }
  const long high = (limit < 1024 ? limit : 1024) - (procfs ? 16 : 17);
  if (high > fd) {
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(high));
    if (moved >= 0) ::close(fd), fd = moved;
  }
  k->dev = st.st_dev;
  k->ino = st.st_ino;
  __atomic_store_n(&k->fd, fd, __ATOMIC_RELEASE);
}

int usable(const Kept& k) {
  const int fd = __atomic_load_n(&k.fd, __ATOMIC_ACQUIRE);
  struct stat st;
  return fd >= 0 && ::fstat(fd, &st) == 0 && st.st_dev == k.dev && st.st_ino == k.ino ? fd : -1;
}

}  // namespace

void keep_dirs_before_fs_change(const char* dump_dir) {
  keep(&g_proc, "/proc", true);
  if (dump_dir && dump_dir[0] == '/') keep(&g_dump, dump_dir, false);
}

int kept_proc_root() { return usable(g_proc); }
int kept_dump_dir() { return usable(g_dump); }

}  // namespace leakwatch::shim
