#include "shim/runtime/proc_memory.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "shim/runtime/identity.h"

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

ResidentPages::ResidentPages() : fd_(open_proc_self("pagemap")) {}

ResidentPages::~ResidentPages() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t ResidentPages::bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const {
  constexpr uintptr_t kPage = 4096;
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

}  // namespace leakwatch::shim
