#include "shim/runtime/proc_maps.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "shim/runtime/identity.h"
#include "shim/runtime/own_fds.h"
#include "shim/runtime/safe_read.h"

namespace leakwatch::shim {

bool parse_map_line(char* line, MapLine* m) {
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

namespace {

// One pass over the file; returns the number of lines seen, -1 if it cannot be opened.
long read_mappings(char* buf, std::size_t cap, MappingFn fn, void* ctx) {
  int fd = open_proc_self("maps");
  if (fd < 0) return -1;
  long lines = 0;
  std::size_t have = 0, from = 0;  // buf[from, have): read, not yet parsed
  bool eof = false;
  for (;;) {
    char* nl = static_cast<char*>(std::memchr(buf + from, '\n', have - from));
    if (!nl) {
      if (eof || (from == 0 && have >= cap - 1)) break;  // the end, or a line longer than the buffer
      // Move the partial line to the front once per read, not once per line.
      std::memmove(buf, buf + from, have - from);
      have -= from;
      from = 0;
      ssize_t n = ::read(fd, buf + have, cap - 1 - have);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) eof = true;
      else have += static_cast<std::size_t>(n);
      continue;
    }
    *nl = '\0';
    MapLine m;
    if (parse_map_line(buf + from, &m)) fn(m, ctx), ++lines;
    from = static_cast<std::size_t>(nl + 1 - buf);
  }
  own_close(fd);
  return lines;
}

}  // namespace

bool for_each_mapping(char* buf, std::size_t cap, MappingFn fn, void* ctx) {
  // A live process always has mappings: an empty pass is a failed read
  // (tried again, in case a racing change of the mappings caused it).
  for (int attempt = 0; attempt < 4; ++attempt) {
    long lines = read_mappings(buf, cap, fn, ctx);
    if (lines < 0) return false;
    if (lines > 0) return true;
  }
  return false;
}

int read_program_headers(uintptr_t base, Elf64_Phdr* out, int cap) {
  Elf64_Ehdr eh;
  if (!safe_read(base, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
    return -1;
  int n = eh.e_phnum < cap ? eh.e_phnum : cap;
  if (!safe_read(base + eh.e_phoff, out, sizeof(Elf64_Phdr) * static_cast<std::size_t>(n))) return -1;
  return n;
}

bool load_bias(const MappedObject& o, const Elf64_Phdr* ph, int n, uintptr_t* bias) {
  constexpr uint64_t kPage = 4096;
  for (int i = 0; i < n; ++i) {
    if (ph[i].p_type != PT_LOAD) continue;
    uint64_t seg_off = ph[i].p_offset & ~(kPage - 1);
    if (seg_off != o.x_offset) continue;
    *bias = o.x_start - (ph[i].p_vaddr - (ph[i].p_offset - seg_off));
    return true;
  }
  return false;
}

namespace {

constexpr std::size_t kPathCap = 4096;

struct ObjectWalk {
  char* path;  // the current object's path (the line buffer is reused)
  MappedObject cur;
  bool active;
  ObjectFn on_object;
  JitFn on_jit;
  void* ctx;

  void flush() {
    if (active && cur.hi && cur.base) on_object(cur, ctx);
    active = false;
  }
};

void on_line(const MapLine& m, void* arg) {
  auto* w = static_cast<ObjectWalk*>(arg);
  bool exec = m.perms[2] == 'x';
  bool memfd = std::strncmp(m.path, "/memfd:", 7) == 0;
  // JIT code: anonymous executable memory (V8, the JVM, LuaJIT), and code
  // in memfd files (BEAM's JIT maps its code through a memfd).
  if (exec && (memfd || (m.inode == 0 && (!*m.path || std::strncmp(m.path, "[anon", 5) == 0)))) {
    if (w->on_jit) w->on_jit(m.start, m.end, w->ctx);
    return;
  }
  if (m.inode == 0 || m.path[0] != '/' || memfd) return;  // [heap], [stack], [vdso], anonymous data
  MappedObject& c = w->cur;
  if (!w->active || c.inode != m.inode || std::strcmp(c.dev, m.dev) != 0 || std::strcmp(w->path, m.path) != 0) {
    w->flush();
    c = MappedObject{};
    w->active = true;
    c.inode = m.inode;
    std::memcpy(c.dev, m.dev, sizeof c.dev);
    std::size_t n = std::strlen(m.path);
    if (n >= kPathCap) n = kPathCap - 1;
    std::memcpy(w->path, m.path, n);
    w->path[n] = '\0';
    c.path = w->path;
  }
  if (m.offset == 0 && !c.base) c.base = m.start, c.base_end = m.end;
  if (exec) {
    if (!c.hi) c.x_start = m.start, c.x_offset = m.offset, c.lo = m.start;
    c.hi = m.end;
  }
}

}  // namespace

bool for_each_object(char* scratch, ObjectFn on_object, JitFn on_jit, void* ctx) {
  SafeReadScope reads;  // every object's headers through one descriptor
  ObjectWalk w{scratch, MappedObject{}, false, on_object, on_jit, ctx};
  bool ok = for_each_mapping(scratch + kPathCap, kObjectScratch - kPathCap, on_line, &w);
  w.flush();
  return ok;
}

}  // namespace leakwatch::shim
