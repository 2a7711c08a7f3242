#include "shim/dump/dir_budget.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/dump/format.h"
#include "shim/runtime/clock.h"
#include "shim/runtime/fnv.h"
#include "shim/runtime/kept_dirs.h"
#include "shim/runtime/own_fds.h"
#include "shim/runtime/proc_memory.h"

namespace leakwatch::shim {
namespace {

constexpr const char kTmpSuffix[] = ".tmp";
constexpr uint64_t kScanShare = 64;       // a scan per budget/64 bytes written, on average
constexpr uint64_t kScanNs = 20ull * 1000000ull;  // reading the directory, at most
constexpr int64_t kLostTmpNs = 86400ll * 1000000000ll;
// Files held per scan (~3 MiB of the scan's arena, names and groups
// included): a larger directory is trimmed among the first kMaxFiles it
// lists (in hash order on most file systems, so a sample), the others
// counted at the average size of those.
constexpr std::size_t kMaxFiles = 1 << 14;

struct Group {
  uint64_t owner;
  int64_t newest_ns;
  uint64_t bytes;
  std::size_t first, count;
  bool own;
  bool ended;
};

bool ends_with(const char* s, std::size_t n, const char* suffix) {
  std::size_t k = std::strlen(suffix);
  return n >= k && std::memcmp(s + n - k, suffix, k) == 0;
}

bool digit(char c) { return c >= '0' && c <= '9'; }
bool hex_digit(char c) { return digit(c) || (c >= 'a' && c <= 'f'); }

// A dump's name without its suffix is exactly "exe.pid.instance.seq"
// (format.h). Returns the length of "exe.pid.instance." and the pid; 0 for
// any other name (a user's copy, a file of another tool).
std::size_t owner_length(const char* s, std::size_t n, long* pid) {
  constexpr std::size_t kSeq = format::kNameSeqDigits, kInstance = format::kNameInstanceDigits;
  if (n < 1 + 1 + 1 + 1 + kInstance + 1 + kSeq) return 0;
  std::size_t i = n - kSeq;
  for (std::size_t k = i; k < n; ++k)
    if (!digit(s[k])) return 0;
  if (s[--i] != '.') return 0;
  const std::size_t owner = i + 1;
  i -= kInstance;
  for (std::size_t k = i; k < i + kInstance; ++k)
    if (!hex_digit(s[k])) return 0;
  if (i == 0 || s[--i] != '.') return 0;
  std::size_t pid_end = i;
  while (i > 0 && digit(s[i - 1])) --i;
  if (i == pid_end || pid_end - i > 10 || i < 2 || s[i - 1] != '.') return 0;
  long p = 0;
  for (std::size_t k = i; k < pid_end; ++k) p = p * 10 + (s[k] - '0');
  const std::size_t exe = i - 1;
  if (exe == 0 || exe > static_cast<std::size_t>(format::kNameExeMax)) return 0;
  for (std::size_t k = 0; k < exe; ++k)
    if (!format::name_exe_char(s[k])) return 0;
  *pid = p;
  return owner;
}

struct Scan {
  DirFile* files = nullptr;
  std::size_t n = 0, cap = 0;
  std::size_t unheld = 0;  // dump names beyond kMaxFiles
};

bool push(Scan* s, const DirFile& f, Arena* scratch) {
  if (s->n == s->cap) {
    if (s->cap >= kMaxFiles) return false;
    std::size_t cap = s->cap ? s->cap * 2 : 1024;
    auto* grown = static_cast<DirFile*>(scratch->alloc(cap * sizeof(DirFile), alignof(DirFile)));
    if (!grown) return false;
    if (s->n) std::memcpy(grown, s->files, s->n * sizeof(DirFile));
    s->files = grown, s->cap = cap;
  }
  s->files[s->n++] = f;
  return true;
}

// Reads the directory's dumps and temp files into s, for at most
// kScanNs (the scan runs on a host thread, inside an allocation: a huge
// directory or a slow network volume must not hold it for seconds).
void scan(int dfd, const char* own_prefix, Scan* s, Arena* scratch) {
  constexpr std::size_t kBuf = 64 * 1024;
  auto* buf = static_cast<char*>(scratch->alloc(kBuf, 8));
  if (!buf) return;
  const std::size_t own_len = std::strlen(own_prefix);
  const int64_t now = static_cast<int64_t>(wall_ns());
  const uint64_t give_up = mono_ns() + kScanNs;
  for (unsigned entries = 0;;) {
    long got = syscall(SYS_getdents64, dfd, buf, kBuf);
    if (got <= 0) return;
    for (long at = 0; at < got;) {
      if ((++entries & 63) == 0 && mono_ns() >= give_up) return;
      auto* d = reinterpret_cast<struct dirent64*>(buf + at);
      at += d->d_reclen;
      const char* name = d->d_name;
      std::size_t len = std::strlen(name);
      const bool tmp = name[0] == '.' && ends_with(name, len, kTmpSuffix);
      std::size_t stem = len - (tmp ? sizeof kTmpSuffix - 1 : 0);
      if (!ends_with(name, stem, format::kFileSuffix)) continue;
      stem -= std::strlen(format::kFileSuffix);
      if (!tmp && name[0] == '.') continue;
      if (tmp && stem == 0) continue;
      const char* base = tmp ? name + 1 : name;
      if (tmp) --stem;
      long pid = 0;
      std::size_t olen = owner_length(base, stem, &pid);
      if (!olen) continue;
      if (s->n >= kMaxFiles) {  // counted, not held: at the average size of those held
        ++s->unheld;
        continue;
      }
      struct stat st;
      if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      const uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512 > static_cast<uint64_t>(st.st_size)
                                 ? static_cast<uint64_t>(st.st_blocks) * 512
                                 : static_cast<uint64_t>(st.st_size);
      auto* copy = static_cast<char*>(scratch->alloc(len + 1, 1));
      if (!copy) return;
      std::memcpy(copy, name, len + 1);
      DirFile f{};
      f.owner = fnv1a(base, olen);
      f.bytes = bytes;
      f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000ll + st.st_mtim.tv_nsec;
      f.name = copy;
      f.own = olen == own_len && std::memcmp(base, own_prefix, olen) == 0;
      // kill(pid, 0) says whether the pid is in use here (ESRCH: not). A
      // process in another pid namespace (a shared volume) may look ended
      // or alive by chance: that only moves it in the order.
      f.ended = !f.own && pid > 0 && pid <= INT_MAX && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
      // A temp file is a killed writer's once its process has ended (or a
      // day on: a writer in another pid namespace); a paused writer keeps it.
      f.stale_tmp = tmp && !f.own && now - f.mtime_ns > kStaleTmpNs && (f.ended || now - f.mtime_ns > kLostTmpNs);
      f.tmp = tmp;
      if (!push(s, f, scratch)) return;
    }
  }
}

}  // namespace

uint64_t choose_evictions(DirFile* files, std::size_t n, uint64_t keep_bytes, Arena* scratch) {
  uint64_t remaining = 0;
  for (std::size_t i = 0; i < n; ++i) {
    files[i].evict = files[i].stale_tmp;
    if (!files[i].evict) remaining += files[i].bytes;
  }
  if (remaining <= keep_bytes) return remaining;
  std::sort(files, files + n, [](const DirFile& a, const DirFile& b) { return a.owner < b.owner; });
  auto* groups = static_cast<Group*>(scratch->alloc(n * sizeof(Group), alignof(Group)));
  if (!groups) return remaining;
  std::size_t ng = 0;
  for (std::size_t i = 0; i < n;) {
    Group g{files[i].owner, 0, 0, i, 0, false, true};
    for (; i < n && files[i].owner == g.owner; ++i, ++g.count) {
      const DirFile& f = files[i];
      g.own |= f.own;
      g.ended &= f.ended;
      if (f.evict) continue;
      g.newest_ns = std::max(g.newest_ns, f.mtime_ns);
      if (!f.tmp) g.bytes += f.bytes;
    }
    groups[ng++] = g;
  }
  // Processes that have ended go first, then the live ones; each least
  // recently written first.
  std::sort(groups, groups + ng, [](const Group& a, const Group& b) {
    return a.ended != b.ended ? a.ended : a.newest_ns < b.newest_ns;
  });
  for (std::size_t k = 0; k < ng && remaining > keep_bytes; ++k) {
    const Group& g = groups[k];
    if (g.own) continue;
    // A temp file not yet stale is a dump being written: left to its writer.
    for (std::size_t i = g.first; i < g.first + g.count; ++i)
      if (!files[i].tmp) files[i].evict = true;
    remaining -= g.bytes;
  }
  return remaining;
}

int dir_budget_trim(const char* dir, const char* own_prefix, uint64_t budget, Arena* scratch) {
  const int kept = kept_dump_dir();  // after a chroot (runtime/kept_dirs.h)
  int dfd = kept >= 0 ? own_openat(kept, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                      : own_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  Scan s;
  scan(dfd, own_prefix, &s, scratch);
  // What the scan did not get to is not known: then it trims only what it
  // read, and only once that alone is over the budget.
  uint64_t held = 0;
  bool stale = false;
  for (std::size_t i = 0; i < s.n; ++i) held += s.files[i].bytes, stale |= s.files[i].stale_tmp;
  const uint64_t unheld_bytes = s.n ? held / s.n * s.unheld : 0;
  const uint64_t total = held + unheld_bytes;
  int removed = 0;
  if (total > budget || stale) {
    const uint64_t target = budget - budget / 8;
    const uint64_t keep = total <= budget ? total : target > unheld_bytes ? target - unheld_bytes : 0;
    choose_evictions(s.files, s.n, keep, scratch);
    const uint64_t give_up = mono_ns() + kScanNs;
    for (std::size_t i = 0; i < s.n && mono_ns() < give_up; ++i)
      if (s.files[i].evict && unlinkat(dfd, s.files[i].name, 0) == 0) ++removed;
  }
  own_close(dfd);
  return removed;
}

int dir_budget_after_write(const char* dir, const char* own_prefix, uint64_t bytes, uint64_t budget,
                           uint64_t* rng, Arena* scratch) {
  if (budget == 0) return 0;
  const uint64_t mean = budget / kScanShare ? budget / kScanShare : 1;
  const uint64_t on_disk = (bytes + 4095) & ~uint64_t{4095};  // what a file takes: whole blocks
  *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;  // xorshift64
  if (*rng % mean >= on_disk) return 0;
  ProcMemory self;
  if (!read_proc_memory(&self) || self.seccomp != 0) return 0;
  return dir_budget_trim(dir, own_prefix, budget, scratch);
}

}  // namespace leakwatch::shim
