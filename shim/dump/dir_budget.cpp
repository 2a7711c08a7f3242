#include "shim/dump/dir_budget.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/dump/format.h"
#include "shim/runtime/clock.h"
#include "shim/runtime/own_fds.h"

namespace leakwatch::shim {
namespace {

constexpr const char kTmpSuffix[] = ".tmp";
constexpr uint64_t kScanShare = 64;       // a scan per budget/64 bytes written, on average
// Files held per scan (~4 MiB of the scan's arena, names included): a
// larger directory is trimmed among the first kMaxFiles it lists (in hash
// order on most file systems, so a sample), counting all of them.
constexpr std::size_t kMaxFiles = 1 << 16;

struct Group {
  uint64_t owner;
  int64_t newest_ns;
  uint64_t bytes;
  std::size_t first, count;
  bool own;
};

bool ends_with(const char* s, std::size_t n, const char* suffix) {
  std::size_t k = std::strlen(suffix);
  return n >= k && std::memcmp(s + n - k, suffix, k) == 0;
}

uint64_t hash_bytes(const char* s, std::size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
  return h;
}

// The length of "exe.pid.instance." in a dump's name without its suffix
// ("exe.pid.instance.seq"); 0 when the name is not one of ours.
std::size_t owner_length(const char* s, std::size_t n) {
  std::size_t i = n;
  while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') --i;
  if (i == n || i == 0 || s[i - 1] != '.') return 0;
  return i;
}

struct Scan {
  DirFile* files = nullptr;
  std::size_t n = 0, cap = 0;
  uint64_t unheld_bytes = 0;  // of the files beyond kMaxFiles
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

// Reads the directory's dumps and temp files into s.
void scan(int dfd, const char* own_prefix, Scan* s, Arena* scratch) {
  constexpr std::size_t kBuf = 64 * 1024;
  auto* buf = static_cast<char*>(scratch->alloc(kBuf, 8));
  if (!buf) return;
  const std::size_t own_len = std::strlen(own_prefix);
  const int64_t now = static_cast<int64_t>(wall_ns());
  for (;;) {
    long got = syscall(SYS_getdents64, dfd, buf, kBuf);
    if (got <= 0) return;
    for (long at = 0; at < got;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + at);
      at += d->d_reclen;
      const char* name = d->d_name;
      std::size_t len = std::strlen(name);
      const bool tmp = name[0] == '.' && ends_with(name, len, kTmpSuffix);
      std::size_t stem = len - (tmp ? sizeof kTmpSuffix - 1 : 0);
      if (!ends_with(name, stem, format::kFileSuffix)) continue;
      stem -= std::strlen(format::kFileSuffix);
      const char* base = tmp ? name + 1 : name;
      if (tmp) --stem;
      if (!tmp && name[0] == '.') continue;
      std::size_t olen = owner_length(base, stem);
      if (!olen) continue;
      struct stat st;
      if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      const uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512 > static_cast<uint64_t>(st.st_size)
                                 ? static_cast<uint64_t>(st.st_blocks) * 512
                                 : static_cast<uint64_t>(st.st_size);
      if (s->n >= kMaxFiles) {
        s->unheld_bytes += bytes;
        continue;
      }
      auto* copy = static_cast<char*>(scratch->alloc(len + 1, 1));
      if (!copy) return;
      std::memcpy(copy, name, len + 1);
      DirFile f{};
      f.owner = hash_bytes(base, olen);
      f.bytes = bytes;
      f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000ll + st.st_mtim.tv_nsec;
      f.name = copy;
      f.own = olen == own_len && std::memcmp(base, own_prefix, olen) == 0;
      f.stale_tmp = tmp && !f.own && now - f.mtime_ns > kStaleTmpNs;
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
    Group g{files[i].owner, 0, 0, i, 0, false};
    for (; i < n && files[i].owner == g.owner; ++i, ++g.count) {
      const DirFile& f = files[i];
      g.own |= f.own;
      if (f.evict) continue;
      g.newest_ns = std::max(g.newest_ns, f.mtime_ns);
      if (!f.tmp) g.bytes += f.bytes;
    }
    groups[ng++] = g;
  }
  std::sort(groups, groups + ng, [](const Group& a, const Group& b) { return a.newest_ns < b.newest_ns; });
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
  int dfd = own_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  Scan s;
  scan(dfd, own_prefix, &s, scratch);
  uint64_t total = s.unheld_bytes;
  bool stale = false;
  for (std::size_t i = 0; i < s.n; ++i) total += s.files[i].bytes, stale |= s.files[i].stale_tmp;
  int removed = 0;
  if (total > budget || stale) {
    const uint64_t target = budget - budget / 8;
    const uint64_t keep = total <= budget ? total : target > s.unheld_bytes ? target - s.unheld_bytes : 0;
    choose_evictions(s.files, s.n, keep, scratch);
    for (std::size_t i = 0; i < s.n; ++i)
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
  return dir_budget_trim(dir, own_prefix, budget, scratch);
}

}  // namespace leakwatch::shim
