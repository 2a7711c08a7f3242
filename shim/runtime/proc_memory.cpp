#include "shim/runtime/proc_memory.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/runtime/identity.h"
#include "shim/runtime/own_fds.h"

namespace leakwatch::shim {
namespace {

// "Name:\t   1234 kB" -> bytes.
uint64_t kb_field(const char* text, const char* name) {
  std::size_t n = std::strlen(name);
  for (const char* p = text; p && *p; p = std::strchr(p, '\n'), p = p ? p + 1 : nullptr) {
    if (std::strncmp(p, name, n) != 0 || p[n] != ':') continue;
    const char* v = p + n + 1;
    while (*v == ' ' || *v == '\t') ++v;
    uint64_t x = 0;
    for (; *v >= '0' && *v <= '9'; ++v) x = x * 10 + static_cast<uint64_t>(*v - '0');
    while (*v == ' ') ++v;
    return (v[0] == 'k' && v[1] == 'B') ? x * 1024 : x;
  }
  return 0;
}

}  // namespace

void parse_proc_status(const char* text, ProcMemory* m) {
  m->rss = kb_field(text, "VmRSS");
  m->rss_anon = kb_field(text, "RssAnon");
  m->rss_file = kb_field(text, "RssFile");
  m->rss_shmem = kb_field(text, "RssShmem");
  m->hwm = kb_field(text, "VmHWM");
  m->swap = kb_field(text, "VmSwap");
  m->vm_size = kb_field(text, "VmSize");
  m->threads = kb_field(text, "Threads");
  m->seccomp = kb_field(text, "Seccomp");
  m->ok = m->rss != 0;
}

bool read_proc_memory(ProcMemory* out) {
  char buf[4096];
  *out = ProcMemory{};
  if (read_proc_self("status", buf, sizeof buf) <= 0) return false;
  parse_proc_status(buf, out);
  return out->ok;
}

uint64_t read_rss_bytes() {
  char buf[128];
  if (read_proc_self("statm", buf, sizeof buf) <= 0) return 0;
  // "size resident shared text lib data dt", in pages.
  const char* p = std::strchr(buf, ' ');
  if (!p) return 0;
  uint64_t pages = 0;
  for (++p; *p >= '0' && *p <= '9'; ++p) pages = pages * 10 + static_cast<uint64_t>(*p - '0');
  long page = sysconf(_SC_PAGESIZE);
  return pages * static_cast<uint64_t>(page > 0 ? page : 4096);
}

namespace {

// PAGEMAP_SCAN's interface (linux/fs.h from 6.7; this build's headers are
// older). Layouts are the kernel's ABI.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsPresent = 1u << 3;
constexpr uintptr_t kPage = 4096;
constexpr uint64_t kScanStep = uint64_t{1} << 30;

// Once the kernel says no (ENOTTY before 6.7, EPERM from a filter), every
// later call goes straight to the entries.
std::atomic<bool> g_scan_refused{false};

// A seccomp filter (mode 2) may kill on an ioctl it does not know (a
// browser-style sandbox allows a few requests only); pread is allowed by
// any filter that lets the shim open files at all.
bool under_seccomp_filter() {
  ProcMemory self;
  return !read_proc_memory(&self) || self.seccomp != 0;
}

}  // namespace

ResidentPages::ResidentPages()
    : fd_(open_proc_self("pagemap")),
      core_(fd_ < 0 && errno == EACCES && !under_seccomp_filter()),
      scan_(fd_ >= 0 && !g_scan_refused.load(std::memory_order_relaxed) && !under_seccomp_filter()) {}

ResidentPages::~ResidentPages() {
  if (fd_ >= 0) own_close(fd_);
}

bool ResidentPages::scan_bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries,
                               uint64_t* out) const {
  const std::size_t nregions = entries * sizeof(uint64_t) / sizeof(PageRegion);
  if (!scan_ || nregions == 0 || g_scan_refused.load(std::memory_order_relaxed)) return false;
  uint64_t total = 0;
  uint64_t at = start & ~(kPage - 1);  // the kernel wants an aligned start; it rounds the end up
  while (at < end) {
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = at;
    // At most 1 GiB a call: the kernel walks a call's range under the
    // process's mmap lock, which the host's mmap and munmap wait for.
    arg.end = end - at > kScanStep ? at + kScanStep : end;
    arg.vec = reinterpret_cast<uintptr_t>(buf);
    arg.vec_len = nregions;
    arg.category_mask = kPageIsPresent;
    arg.return_mask = kPageIsPresent;
    const long n = ::ioctl(fd_, kPagemapScan, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      g_scan_refused.store(true, std::memory_order_relaxed);
      return false;
    }
    const auto* regions = reinterpret_cast<const PageRegion*>(buf);
    for (long i = 0; i < n; ++i) total += regions[i].end - regions[i].start;
    if (arg.walk_end <= at) break;  // no progress: what was counted stands
    at = arg.walk_end;
  }
  *out = total;
  return true;
}

uint64_t ResidentPages::entry_bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const {
  if (fd_ < 0 || entries == 0) return 0;
  uint64_t pages = 0;
  for (uintptr_t page = start / kPage; page < (end + kPage - 1) / kPage;) {
    std::size_t want = static_cast<std::size_t>((end + kPage - 1) / kPage - page);
    if (want > entries) want = entries;
    const ssize_t r = ::pread(fd_, buf, want * sizeof(uint64_t), static_cast<off_t>(page * sizeof(uint64_t)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const std::size_t got = static_cast<std::size_t>(r) / sizeof(uint64_t);
    if (got == 0) break;
    for (std::size_t i = 0; i < got; ++i) pages += buf[i] >> 63;
    page += got;
  }
  return pages * kPage;
}

uint64_t ResidentPages::core_bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const {
  auto* vec = reinterpret_cast<unsigned char*>(buf);  // a byte per page
  const std::size_t per_call = entries * sizeof(uint64_t);
  uint64_t pages = 0;
  for (uintptr_t at = start & ~(kPage - 1); per_call && at < end;) {
    std::size_t n = static_cast<std::size_t>((end - at + kPage - 1) / kPage);
    if (n > per_call) n = per_call;
    // The system call: the shim's own mincore hook answers libunwind.
    if (::syscall(SYS_mincore, at, n * kPage, vec) != 0) {
      if (errno == EAGAIN) continue;
      break;  // ENOMEM: unmapped meanwhile; what was counted stands
    }
    for (std::size_t i = 0; i < n; ++i) pages += vec[i] & 1;
    at += n * kPage;
  }
  return pages * kPage;
}

uint64_t ResidentPages::bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const {
  if (core_) return core_bytes(start, end, buf, entries);
  uint64_t scanned;
  if (scan_bytes(start, end, buf, entries, &scanned)) return scanned;
  return entry_bytes(start, end, buf, entries);
}

}  // namespace leakwatch::shim
