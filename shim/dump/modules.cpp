#include "shim/dump/modules.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

namespace leakwatch::shim {
namespace {

constexpr int kMaxModules = 4096;

struct Collect {
  Arena* arena;
  const char* exe_path;
  ModuleInfo* mods;
  int count;
};

const char* arena_strdup(Arena* a, const char* s) {
  std::size_t n = std::strlen(s);
  char* d = static_cast<char*>(a->alloc(n + 1, 1));
  if (!d) return "";
  std::memcpy(d, s, n + 1);
  return d;
}

int on_object(struct dl_phdr_info* info, size_t, void* data) {
  auto* c = static_cast<Collect*>(data);
  if (c->count >= kMaxModules) return 1;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  ModuleInfo m{};
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
      lo = std::min<uintptr_t>(lo, info->dlpi_addr + ph.p_vaddr);
      hi = std::max<uintptr_t>(hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
    } else if (ph.p_type == PT_NOTE && !m.build_id[0]) {
      build_id_from_notes(reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr), ph.p_memsz, m.build_id);
    }
  }
  if (hi == 0) return 0;
  m.start = lo;
  m.end = hi;
  m.bias = info->dlpi_addr;
  m.kind = format::kElf;
  const char* name = info->dlpi_name;
  // The main program has an empty name; use the path /proc/self/exe gave.
  m.path = arena_strdup(c->arena, (name && *name) ? name : c->exe_path);
  c->mods[c->count++] = m;
  return 0;
}

// Anonymous executable mappings: JIT code (V8, the JVM, LuaJIT...).
void add_jit_regions(Collect* c) {
  static char buf[64 * 1024];
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::size_t have = 0;
  bool eof = false;
  while (!eof || have) {
    if (!eof && have < sizeof buf) {
      ssize_t n = ::read(fd, buf + have, sizeof buf - have);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) eof = true; else have += n;
    }
    char* nl = static_cast<char*>(std::memchr(buf, '\n', have));
    if (!nl) {
      if (eof || have == sizeof buf) break;  // a line longer than the buffer: stop
      continue;
    }
    *nl = '\0';
    // "start-end perms offset dev inode   path"
    unsigned long long start = 0, end = 0;
    char* p = buf;
    auto hex = [&](unsigned long long* v) {
      for (; *p; ++p) {
        char ch = *p;
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0) break;
        *v = *v * 16 + d;
      }
    };
    hex(&start);
    if (*p == '-') ++p;
    hex(&end);
    while (*p == ' ') ++p;
    // Fields: perms, offset, dev, inode, then the path (rest of line).
    const char* field[4] = {nullptr, nullptr, nullptr, nullptr};
    for (int f = 0; f < 4; ++f) {
      while (*p == ' ') ++p;
      field[f] = p;
      while (*p && *p != ' ') ++p;
    }
    while (*p == ' ') ++p;
    const char* path = p;
    bool exec = field[0][0] && field[0][1] && field[0][2] == 'x';
    bool anon_inode = field[3][0] == '0' && (field[3][1] == ' ' || field[3][1] == '\0');
    bool anon = anon_inode && (!*path || std::strncmp(path, "[anon", 5) == 0 || std::strncmp(path, "/memfd:", 7) == 0);
    if (exec && anon && c->count < kMaxModules) {
      ModuleInfo* last = c->count ? &c->mods[c->count - 1] : nullptr;
      if (last && last->kind == format::kJit && last->end == start) {
        last->end = end;
      } else {
        ModuleInfo m{};
        m.start = start;
        m.end = end;
        m.kind = format::kJit;
        m.path = "[jit]";
        c->mods[c->count++] = m;
      }
    }
    std::size_t used = static_cast<std::size_t>(nl + 1 - buf);
    std::memmove(buf, nl + 1, have - used);
    have -= used;
  }
  ::close(fd);
}

}  // namespace

int build_id_from_notes(const uint8_t* notes, uint64_t size, char* hex) {
  uint64_t off = 0;
  while (off + sizeof(ElfW(Nhdr)) <= size) {
    ElfW(Nhdr) nh;
    std::memcpy(&nh, notes + off, sizeof nh);
    uint64_t name_at = off + sizeof nh;
    uint64_t desc_at = name_at + ((nh.n_namesz + 3) & ~3u);
    uint64_t next = desc_at + ((nh.n_descsz + 3) & ~3u);
    if (next > size || next <= off) break;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(notes + name_at, "GNU", 4) == 0 &&
        nh.n_descsz > 0 && nh.n_descsz <= 32) {
      for (uint32_t i = 0; i < nh.n_descsz; ++i) {
        hex[2 * i] = "0123456789abcdef"[notes[desc_at + i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[notes[desc_at + i] & 15];
      }
      hex[2 * nh.n_descsz] = '\0';
      return static_cast<int>(2 * nh.n_descsz);
    }
    off = next;
  }
  return 0;
}

int ModuleMap::find(uintptr_t addr) const {
  int lo = 0, hi = count - 1, best = -1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (mods[mid].start <= addr) best = mid, lo = mid + 1;
    else hi = mid - 1;
  }
  if (best >= 0 && addr < mods[best].end) return best;
  return -1;
}

bool collect_modules(Arena* arena, const char* exe_path, ModuleMap* out) {
  Collect c{arena, exe_path, static_cast<ModuleInfo*>(arena->alloc(sizeof(ModuleInfo) * kMaxModules)), 0};
  if (!c.mods) return false;
  dl_iterate_phdr(on_object, &c);
  add_jit_regions(&c);
  std::sort(c.mods, c.mods + c.count, [](const ModuleInfo& a, const ModuleInfo& b) { return a.start < b.start; });
  uint64_t sig = 1469598103934665603ull;
  for (int i = 0; i < c.count; ++i)
    if (c.mods[i].kind == format::kElf) sig = (sig ^ c.mods[i].start ^ (c.mods[i].end << 17)) * 1099511628211ull;
  out->mods = c.mods;
  out->count = c.count;
  out->signature = sig;
  return true;
}

}  // namespace leakwatch::shim
