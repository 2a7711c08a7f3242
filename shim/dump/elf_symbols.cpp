#include "shim/dump/elf_symbols.h"

#include "shim/runtime/identity.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/log.h"
#include "shim/runtime/own_fds.h"

#include <algorithm>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leakwatch::shim {

namespace {
bool in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

// By address, and among symbols at one address the larger first. A radix
// sort: a module's index is built at the first dump that names its frames
// (for a short run, the final one, at exit), and std::sort took 40 M
// instructions (~15 ms) on node's 86,000 functions; 11-bit digits over the
// bits in use take ~3 passes. Its scratch and counters are mapped for the
// occasion (a host thread's stack may be small).
template <typename Sym>
void sort_symbols(Sym* a, uint64_t n) {
  if (n < 2) return;
  constexpr int kBits = 11;
  constexpr uint64_t kDigits = uint64_t{1} << kBits;
  const std::size_t bytes = n * sizeof(Sym) + (kDigits + 1) * sizeof(uint64_t);
  void* scratch = map_pages(bytes);
  if (!scratch) {  // past the address-space budget: in place, without allocating
    std::sort(a, a + n, [](const Sym& x, const Sym& y) { return x.value < y.value; });
  } else {
    auto* start = static_cast<uint64_t*>(scratch);
    auto* tmp = reinterpret_cast<Sym*>(start + kDigits + 1);
    uint64_t used = 0;
    for (uint64_t i = 0; i < n; ++i) used |= a[i].value;
    Sym* from = a;
    Sym* to = tmp;
    for (int shift = 0; shift < 64 && (used >> shift) != 0; shift += kBits) {
      std::memset(start, 0, (kDigits + 1) * sizeof(uint64_t));
      for (uint64_t i = 0; i < n; ++i) ++start[((from[i].value >> shift) & (kDigits - 1)) + 1];
      for (uint64_t d = 1; d <= kDigits; ++d) start[d] += start[d - 1];
      for (uint64_t i = 0; i < n; ++i) to[start[(from[i].value >> shift) & (kDigits - 1)]++] = from[i];
      Sym* t = from;
      from = to;
      to = t;
    }
    if (from != a) std::memcpy(a, from, n * sizeof(Sym));
    unmap_pages(scratch, bytes);
  }
  // Runs of one address are short (aliases): larger first; of aliases of
  // one size, resolve() takes the last, so the public name goes last
  // (strndup, not __strndup), else symbol-table order.
  auto underscores = [](const char* name) {
    int k = 0;
    while (name[k] == '_') ++k;
    return k;
  };
  auto before = [&](const Sym& x, const Sym& y) {  // x must precede y
    return x.size != y.size ? x.size > y.size : underscores(x.name) > underscores(y.name);
  };
  for (uint64_t i = 1; i < n; ++i)
    for (uint64_t j = i; j > 0 && a[j - 1].value == a[j].value && before(a[j], a[j - 1]); --j) std::swap(a[j - 1], a[j]);
}
}  // namespace

bool SymbolResolver::index_file(File* f, const uint8_t* data, uint64_t size, const char* expect) {
  if (size < sizeof(Elf64_Ehdr) || std::memcmp(data, ELFMAG, SELFMAG) != 0 || data[EI_CLASS] != ELFCLASS64)
    return false;
  Elf64_Ehdr eh;
  std::memcpy(&eh, data, sizeof eh);
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || !in_bounds(eh.e_shoff, uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr), size))
    return false;
  auto shdr = [&](int i) {
    Elf64_Shdr s;
    std::memcpy(&s, data + eh.e_shoff + uint64_t(i) * sizeof s, sizeof s);
    return s;
  };
  // The file must be the image that is loaded: compare build-ids.
  char file_id[65] = "";
  for (int i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr s = shdr(i);
    if (s.sh_type == SHT_NOTE && in_bounds(s.sh_offset, s.sh_size, size))
      if (build_id_from_notes(data + s.sh_offset, s.sh_size, file_id)) break;
  }
  if (expect[0] && std::strcmp(file_id, expect) != 0) return false;

  int symtab = -1;
  for (int pass = 0; pass < 2 && symtab < 0; ++pass)
    for (int i = 0; i < eh.e_shnum; ++i)
      if (shdr(i).sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) {
        symtab = i;
        break;
      }
  if (symtab < 0) return true;  // usable, but no names
  Elf64_Shdr st = shdr(symtab);
  if (st.sh_link >= eh.e_shnum || st.sh_entsize != sizeof(Elf64_Sym) || !in_bounds(st.sh_offset, st.sh_size, size))
    return true;
  Elf64_Shdr strs = shdr(st.sh_link);
  if (!in_bounds(strs.sh_offset, strs.sh_size, size)) return true;
  uint64_t n = st.sh_size / sizeof(Elf64_Sym);
  Sym* out = static_cast<Sym*>(arena_.alloc(sizeof(Sym) * (n ? n : 1)));
  if (!out) return true;
  uint64_t k = 0;
  for (uint64_t i = 0; i < n; ++i) {
    Elf64_Sym sym;
    std::memcpy(&sym, data + st.sh_offset + i * sizeof sym, sizeof sym);
    int type = ELF64_ST_TYPE(sym.st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_value == 0 || sym.st_shndx == SHN_UNDEF) continue;
    if (sym.st_name >= strs.sh_size) continue;
    const char* name = reinterpret_cast<const char*>(data + strs.sh_offset + sym.st_name);
    if (!std::memchr(name, '\0', strs.sh_size - sym.st_name)) continue;
    out[k++] = Sym{sym.st_value, sym.st_size, name};
  }
  sort_symbols(out, k);
  f->syms = out;
  f->nsyms = k;
  return true;
}

SymbolResolver::File* SymbolResolver::load(const ModuleInfo& mod) {
  for (int i = 0; i < nfiles_; ++i)
    if (std::strcmp(files_[i]->path, mod.path) == 0 && std::strcmp(files_[i]->build_id, mod.build_id) == 0)
      return files_[i];
  if (nfiles_ >= 1024) return nullptr;
  auto* f = static_cast<File*>(arena_.alloc(sizeof(File)));
  if (!f) return nullptr;
  std::memset(f, 0, sizeof *f);
  std::size_t plen = std::strlen(mod.path);
  char* path = static_cast<char*>(arena_.alloc(plen + 1, 1));
  if (!path) return nullptr;
  std::memcpy(path, mod.path, plen + 1);
  f->path = path;
  std::memcpy(f->build_id, mod.build_id, sizeof f->build_id);
  files_[nfiles_++] = f;

  if (!index_fd(f, own_open(mod.path, O_RDONLY | O_CLOEXEC), mod.build_id) && mod.image_start) {
    // The file on disk is gone or is another build (a deploy replaced it):
    // the mapped file itself is still reachable through map_files (when
    // the process may open it: root, or CAP_SYS_ADMIN).
    char mapped[64];
    format(mapped, sizeof mapped, "map_files/%lx-%lx", static_cast<unsigned long>(mod.image_start),
           static_cast<unsigned long>(mod.image_end));
    index_fd(f, open_proc_self(mapped), mod.build_id);
  }
  return f;
}

bool SymbolResolver::index_fd(File* f, int fd, const char* build_id) {
  if (fd < 0) return false;
  struct stat st;
  // Kept mapped for the process's life: charged to the shim's address-space
  // budget (a host under RLIMIT_AS); past it the module goes unnamed.
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      charge_address_space(static_cast<std::size_t>(st.st_size))) {
    void* m = ::mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      f->usable = index_file(f, static_cast<const uint8_t*>(m), st.st_size, build_id);
      if (f->usable && f->nsyms) {
        f->map = m;
        f->map_size = st.st_size;
      } else {
        ::munmap(m, st.st_size);
      }
    }
    if (!f->map) uncharge_address_space(static_cast<std::size_t>(st.st_size));
  }
  own_close(fd);
  return f->usable;
}

SymbolHit SymbolResolver::resolve(const ModuleInfo& mod, uintptr_t address) {
  if (mod.kind != format::kElf) return {nullptr, 0};
  File* f = load(mod);
  if (f && f->nsyms) {
    uint64_t vaddr = address - mod.bias;
    // Return addresses point after the call: look up address - 1.
    uint64_t probe = vaddr - 1;
    Sym* end = f->syms + f->nsyms;
    Sym* it = std::upper_bound(f->syms, end, probe, [](uint64_t v, const Sym& s) { return v < s.value; });
    while (it != f->syms) {
      --it;
      if (probe >= it->value && (probe < it->value + it->size || it->size == 0)) return {it->name, vaddr - it->value};
      if (it->size != 0) break;  // sorted by start: an earlier sized symbol cannot cover it
    }
  }
  return {nullptr, 0};
}

void SymbolResolver::reset() {
  for (int i = 0; i < nfiles_; ++i)
    if (files_[i]->map) {
      ::munmap(files_[i]->map, files_[i]->map_size);
      uncharge_address_space(files_[i]->map_size);
    }
  nfiles_ = 0;
  arena_.reset();
}

}  // namespace leakwatch::shim
