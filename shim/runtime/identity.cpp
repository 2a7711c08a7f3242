#include "shim/runtime/identity.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/runtime/clock.h"
#include "shim/runtime/kept_dirs.h"
#include "shim/runtime/log.h"
#include "shim/runtime/own_fds.h"

namespace leakwatch::shim {

Identity g_identity;

namespace {

char g_scratch[64 * 1024];   // init/fork-child only: no concurrent users
char g_scratch2[64 * 1024];

void copy(char* dst, std::size_t cap, const char* src, std::size_t n) {
  if (n >= cap) n = cap - 1;
  std::memcpy(dst, src, n);
  dst[n] = '\0';
}

const char* base_name(const char* path) {
  const char* b = std::strrchr(path, '/');
  return b ? b + 1 : path;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// First run of exactly 64 hex digits after `prefix` (or anywhere if prefix is "").
bool find_hex64(const char* text, const char* prefix, char* out, int cap) {
  std::size_t plen = std::strlen(prefix);
  for (const char* p = text; *p; ++p) {
    if (plen && std::strncmp(p, prefix, plen) != 0) continue;
    const char* s = p + plen;
    // Skip runtime prefixes such as "docker-" or "cri-containerd-".
    if (!plen) {
      if (p != text && is_hex(p[-1])) continue;
    } else {
      const char* dash = s;
      while (*dash && *dash != '/' && !is_hex(*dash)) ++dash;
      if (*dash && *dash != '/') s = dash;
    }
    int n = 0;
    while (is_hex(s[n])) ++n;
    if (n == 64 && cap > 64) {
      std::memcpy(out, s, 64);
      out[64] = '\0';
      return true;
    }
  }
  return false;
}

uint64_t ns_inode(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

}  // namespace

namespace {

int open_in_proc(int root, const char* dir, const char* name) {
  char path[128];
  format(path, sizeof path, "%s%s/%s", root == AT_FDCWD ? "/proc/" : "", dir, name);
  return own_openat(root, path, O_RDONLY | O_CLOEXEC);
}

}  // namespace

int open_proc_self(const char* name) {
  int fd = open_in_proc(AT_FDCWD, "thread-self", name);
  if (fd >= 0 || errno != ENOENT) return fd;
  fd = open_in_proc(AT_FDCWD, "self", name);
  if (fd >= 0 || errno != ENOENT) return fd;
  // This process's /proc is gone (runtime/kept_dirs.h): the one it had.
  const int root = kept_proc_root();
  if (root < 0) return -1;
  fd = open_in_proc(root, "thread-self", name);
  if (fd >= 0 || errno != ENOENT) return fd;
  return open_in_proc(root, "self", name);
}

namespace {
long read_fd(int fd, char* buf, long cap) {
  if (fd < 0) return -1;
  long total = 0;
  while (total < cap - 1) {
    ssize_t n = ::read(fd, buf + total, cap - 1 - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    total += n;
  }
  own_close(fd);
  buf[total] = '\0';
  return total;
}
}  // namespace

long read_small_file(const char* path, char* buf, long cap) { return read_fd(own_open(path, O_RDONLY | O_CLOEXEC), buf, cap); }
long read_proc_self(const char* name, char* buf, long cap) { return read_fd(open_proc_self(name), buf, cap); }

void find_container_id(const char* cgroup, const char* mountinfo, char* out, int cap) {
  out[0] = '\0';
  // cgroup v1 and v2 without a cgroup namespace: ".../docker-<id>.scope", "/kubepods/.../<id>".
  if (cgroup && find_hex64(cgroup, "", out, cap)) return;
  // With a private cgroup namespace the cgroup path is just "/" (or the
  // file is unreadable): then the
  // runtime still shows through the files it bind-mounted into the
  // container (/etc/hostname, /etc/hosts, /etc/resolv.conf). Only those
  // lines are read: a host's own mount table also lists other containers'
  // mounts (shm, overlay layers), which must not be taken for ours.
  bool ns_root = !cgroup || (std::strcmp(cgroup, "0::/\n") == 0 || std::strcmp(cgroup, "0::/") == 0);
  if (!ns_root || !mountinfo) return;
  for (const char* line = mountinfo; *line;) {
    const char* eol = std::strchr(line, '\n');
    std::size_t len = eol ? static_cast<std::size_t>(eol - line) : std::strlen(line);
    // Fields: id parent major:minor root mountpoint ...
    const char* f = line;
    const char* field[5] = {};
    std::size_t flen[5] = {};
    for (int i = 0; i < 5 && f < line + len; ++i) {
      field[i] = f;
      while (f < line + len && *f != ' ') ++f;
      flen[i] = static_cast<std::size_t>(f - field[i]);
      while (f < line + len && *f == ' ') ++f;
    }
    auto is = [&](const char* m) { return flen[4] == std::strlen(m) && std::strncmp(field[4], m, flen[4]) == 0; };
    if (field[4] && (is("/etc/hostname") || is("/etc/hosts") || is("/etc/resolv.conf"))) {
      char root[1024];
      std::size_t n = flen[3] < sizeof root - 1 ? flen[3] : sizeof root - 1;
      std::memcpy(root, field[3], n);
      root[n] = '\0';
      if (find_hex64(root, "containers/", out, cap) || find_hex64(root, "sandboxes/", out, cap)) return;
    }
    if (!eol) break;
    line = eol + 1;
  }
  out[0] = '\0';
}

namespace {
uint64_t new_instance(int pid) {
  uint64_t v;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v) v = mono_ns() * 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(pid);
  return v;
}
}  // namespace

void identity_after_fork(Identity* id) {
  id->ppid = id->pid;
  id->pid = static_cast<int>(::getpid());
  id->instance = new_instance(id->pid);
  id->start_mono_ns = mono_ns();
  id->start_wall_ns = wall_ns();
}

void identity_collect_name(Identity* id) {
  std::memset(id, 0, sizeof *id);
  id->pid = static_cast<int>(::getpid());
  id->ppid = static_cast<int>(::getppid());
  id->instance = new_instance(id->pid);
  id->start_mono_ns = mono_ns();

  ssize_t n = ::readlink("/proc/self/exe", id->exe, sizeof id->exe - 1);
  id->exe[n > 0 ? n : 0] = '\0';

  long len = read_small_file("/proc/self/cmdline", g_scratch, sizeof g_scratch);
  if (len > 0) {
    copy(id->argv0, sizeof id->argv0, g_scratch, std::strlen(g_scratch));
    for (long i = 0; i < len - 1; ++i)
      if (g_scratch[i] == '\0') g_scratch[i] = ' ';
    copy(id->cmdline, sizeof id->cmdline, g_scratch, std::strlen(g_scratch));
  }
  const char* base = id->exe[0] ? base_name(id->exe) : base_name(id->argv0);
  copy(id->exe_base, sizeof id->exe_base, base, std::strlen(base));
}

void identity_collect_rest(Identity* id) {
  // Start time: field 22 of /proc/self/stat, in clock ticks after boot
  // (the comm field may hold spaces and parentheses: parse after the last ')').
  if (read_small_file("/proc/self/stat", g_scratch, sizeof g_scratch) > 0) {
    const char* p = std::strrchr(g_scratch, ')');
    unsigned long long ticks = 0;
    int field = 2;
    while (p && *p && field < 22) {
      if (*p == ' ') ++field;
      ++p;
    }
    while (p && *p >= '0' && *p <= '9') ticks = ticks * 10 + (*p++ - '0');
    unsigned long long btime = 0;
    if (read_small_file("/proc/stat", g_scratch2, sizeof g_scratch2) > 0) {
      const char* b = std::strstr(g_scratch2, "\nbtime ");
      if (b)
        for (b += 7; *b >= '0' && *b <= '9'; ++b) btime = btime * 10 + (*b - '0');
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (btime && hz > 0) id->start_wall_ns = btime * 1000000000ull + ticks * (1000000000ull / hz);
  }
  if (!id->start_wall_ns) id->start_wall_ns = wall_ns();

  if (gethostname(id->hostname, sizeof id->hostname - 1) != 0) id->hostname[0] = '\0';
  long c = read_small_file("/proc/self/cgroup", g_scratch, sizeof g_scratch);
  long m = read_small_file("/proc/self/mountinfo", g_scratch2, sizeof g_scratch2);
  find_container_id(c > 0 ? g_scratch : nullptr, m > 0 ? g_scratch2 : nullptr, id->container_id,
                    sizeof id->container_id);
  char boot[64];
  if (read_small_file("/proc/sys/kernel/random/boot_id", boot, sizeof boot) > 0) {
    std::size_t n = std::strcspn(boot, "\n");
    copy(id->boot_id, sizeof id->boot_id, boot, n);
  }
  id->pid_ns = ns_inode("/proc/self/ns/pid");
  id->mnt_ns = ns_inode("/proc/self/ns/mnt");
}

}  // namespace leakwatch::shim
