#include "shim/dump/modules.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include "shim/runtime/safe_read.h"

namespace leakwatch::shim {
namespace {

constexpr int kMaxModules = 4096;
constexpr uintptr_t kPage = 4096;

// One line of /proc/self/maps: "start-end perms offset dev inode   path".
struct MapLine {
  uintptr_t start = 0, end = 0;
  uint64_t offset = 0, inode = 0;
  char perms[5] = "";
  char dev[16] = "";
  const char* path = "";  // points into the line buffer; " (deleted)" removed
};

bool parse_line(char* line, MapLine* m) {
  char* p = line;
  auto hex = [&p](uint64_t* v) {
    const char* s = p;
    for (;; ++p) {
      int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
      if (d < 0) break;
      *v = *v * 16 + static_cast<uint64_t>(d);
    }
    return p != s;
  };
  auto word = [&p](char* out, std::size_t cap) {
    while (*p == ' ') ++p;
    std::size_t n = 0;
    for (; *p && *p != ' '; ++p)
      if (n + 1 < cap) out[n++] = *p;
    out[n] = '\0';
  };
  uint64_t a = 0, b = 0;
  if (!hex(&a) || *p++ != '-' || !hex(&b)) return false;
  m->start = a, m->end = b;
  word(m->perms, sizeof m->perms);
  while (*p == ' ') ++p;
  m->offset = 0;
  if (!hex(&m->offset)) return false;
  word(m->dev, sizeof m->dev);
  while (*p == ' ') ++p;
  m->inode = 0;
  for (; *p >= '0' && *p <= '9'; ++p) m->inode = m->inode * 10 + static_cast<uint64_t>(*p - '0');
  while (*p == ' ') ++p;
  m->path = p;
  std::size_t n = std::strlen(p);
  static const char kDeleted[] = " (deleted)";
  if (n >= sizeof kDeleted - 1 && std::strcmp(p + n - (sizeof kDeleted - 1), kDeleted) == 0)
    p[n - (sizeof kDeleted - 1)] = '\0';
  return true;
}

// Calls fn(MapLine&) for every line of /proc/self/maps. The buffer comes
// from the arena: this runs on a host thread, whose stack may be small.
template <typename Fn>
bool for_each_mapping(Arena* arena, Fn fn) {
  constexpr std::size_t kBuf = 64 * 1024;
  char* buf = static_cast<char*>(arena->alloc(kBuf, 1));
  if (!buf) return false;
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t have = 0;
  bool eof = false;
  while (!eof || have) {
    if (!eof && have < kBuf - 1) {
      ssize_t n = ::read(fd, buf + have, kBuf - 1 - have);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) eof = true;
      else have += static_cast<std::size_t>(n);
    }
    char* nl = static_cast<char*>(std::memchr(buf, '\n', have));
    if (!nl) {
      if (eof || have >= kBuf - 1) break;  // a line longer than the buffer: stop there
      continue;
    }
    *nl = '\0';
    MapLine m;
    if (parse_line(buf, &m)) fn(m);
    std::size_t used = static_cast<std::size_t>(nl + 1 - buf);
    std::memmove(buf, nl + 1, have - used);
    have -= used;
  }
  ::close(fd);
  return true;
}

const char* arena_strdup(Arena* a, const char* s) {
  std::size_t n = std::strlen(s);
  char* d = static_cast<char*>(a->alloc(n + 1, 1));
  if (!d) return "";
  std::memcpy(d, s, n + 1);
  return d;
}

// The ELF program headers of an image whose first page is mapped at base.
int read_phdrs(uintptr_t base, Elf64_Phdr* out, int cap) {
  Elf64_Ehdr eh;
  if (!safe_read(base, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
    return -1;
  int n = eh.e_phnum < cap ? eh.e_phnum : cap;
  if (!safe_read(base + eh.e_phoff, out, sizeof(Elf64_Phdr) * static_cast<std::size_t>(n))) return -1;
  return n;
}

// A file-backed object being assembled from consecutive mappings.
struct Pending {
  bool active = false;
  uint64_t inode = 0;
  char dev[16] = "";
  char path[4096] = "";
  uintptr_t base = 0, base_end = 0;  // its offset-0 mapping (the ELF header), 0 if not seen
  uintptr_t lo = 0, hi = 0;  // executable range
  uintptr_t x_start = 0;  // first executable mapping, and its file offset
  uint64_t x_offset = 0;
};

struct Collect {
  Arena* arena;
  ModuleInfo* mods;
  int count;
  Pending cur;
};

// Turns a finished file-backed object into a module, if it is an ELF image
// with code: its load bias from the program headers (read safely from
// memory), its build-id from its notes.
void flush(Collect* c) {
  Pending& p = c->cur;
  if (!p.active || p.hi == 0 || p.base == 0 || c->count >= kMaxModules) {
    p.active = false;
    return;
  }
  p.active = false;
  Elf64_Phdr ph[64];
  int n = read_phdrs(p.base, ph, 64);
  if (n <= 0) return;
  ModuleInfo m{};
  bool have_bias = false;
  for (int i = 0; i < n && !have_bias; ++i) {
    if (ph[i].p_type != PT_LOAD) continue;
    uint64_t seg_off = ph[i].p_offset & ~(kPage - 1);
    if (seg_off != p.x_offset) continue;
    m.bias = p.x_start - (ph[i].p_vaddr - (ph[i].p_offset - seg_off));
    have_bias = true;
  }
  if (!have_bias) return;
  for (int i = 0; i < n && !m.build_id[0]; ++i) {
    if (ph[i].p_type != PT_NOTE || ph[i].p_filesz == 0 || ph[i].p_filesz > 4096) continue;
    uint8_t notes[4096];
    if (safe_read(m.bias + ph[i].p_vaddr, notes, ph[i].p_filesz)) build_id_from_notes(notes, ph[i].p_filesz, m.build_id);
  }
  m.start = p.lo;
  m.end = p.hi;
  m.kind = format::kElf;
  m.path = arena_strdup(c->arena, p.path);
  m.image_start = p.base;
  m.image_end = p.base_end;
  c->mods[c->count++] = m;
}

void add_jit(Collect* c, uintptr_t start, uintptr_t end) {
  ModuleInfo* last = c->count ? &c->mods[c->count - 1] : nullptr;
  if (last && last->kind == format::kJit && last->end == start) {
    last->end = end;
    return;
  }
  if (c->count >= kMaxModules) return;
  ModuleInfo m{};
  m.start = start;
  m.end = end;
  m.kind = format::kJit;
  m.path = "[jit]";
  c->mods[c->count++] = m;
}

void on_mapping(Collect* c, const MapLine& m) {
  bool exec = m.perms[2] == 'x';
  // JIT code: anonymous executable memory (V8, the JVM, LuaJIT), and code
  // in memfd files (BEAM's JIT maps its code twice through a memfd).
  bool memfd = std::strncmp(m.path, "/memfd:", 7) == 0;
  if (exec && (memfd || (m.inode == 0 && (!*m.path || std::strncmp(m.path, "[anon", 5) == 0)))) {
    add_jit(c, m.start, m.end);
    return;
  }
  if (m.inode == 0 || m.path[0] != '/' || memfd) return;  // [heap], [stack], [vdso], anonymous data
  Pending& p = c->cur;
  if (!p.active || p.inode != m.inode || std::strcmp(p.dev, m.dev) != 0 || std::strcmp(p.path, m.path) != 0) {
    flush(c);
    p = Pending{};
    p.active = true;
    p.inode = m.inode;
    std::memcpy(p.dev, m.dev, sizeof p.dev);
    std::size_t n = std::strlen(m.path);
    if (n >= sizeof p.path) n = sizeof p.path - 1;
    std::memcpy(p.path, m.path, n);
    p.path[n] = '\0';
  }
  if (m.offset == 0 && !p.base) p.base = m.start, p.base_end = m.end;
  if (exec) {
    if (!p.hi) p.x_start = m.start, p.x_offset = m.offset, p.lo = m.start;
    p.hi = m.end;
  }
}

}  // namespace

int build_id_from_notes(const uint8_t* notes, uint64_t size, char* hex) {
  uint64_t off = 0;
  while (off + sizeof(Elf64_Nhdr) <= size) {
    Elf64_Nhdr nh;
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

bool collect_modules(Arena* arena, ModuleMap* out) {
  auto* c = static_cast<Collect*>(arena->alloc(sizeof(Collect)));
  if (!c) return false;
  c->arena = arena;
  c->count = 0;
  c->cur = Pending{};
  c->mods = static_cast<ModuleInfo*>(arena->alloc(sizeof(ModuleInfo) * kMaxModules));
  if (!c->mods) return false;
  if (!for_each_mapping(arena, [c](const MapLine& m) { on_mapping(c, m); })) return false;
  flush(c);
  std::sort(c->mods, c->mods + c->count, [](const ModuleInfo& a, const ModuleInfo& b) { return a.start < b.start; });
  uint64_t sig = 1469598103934665603ull;
  for (int i = 0; i < c->count; ++i)
    if (c->mods[i].kind == format::kElf) sig = (sig ^ c->mods[i].start ^ (c->mods[i].end << 17)) * 1099511628211ull;
  out->mods = c->mods;
  out->count = c->count;
  out->signature = sig;
  return true;
}

}  // namespace leakwatch::shim
