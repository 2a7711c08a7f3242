#include "shim/hook/deepbind.h"

#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/record/real_functions.h"
#include "shim/runtime/internal_alloc.h"
#include "shim/runtime/log.h"

namespace leakwatch::shim {
namespace {

constexpr int kHooks = static_cast<int>(sizeof(RealFunctions) / sizeof(void*));
static_assert(sizeof(RealFunctions) % sizeof(void*) == 0, "RealFunctions holds only function pointers");

// The next allocator's definition of hooked symbol i (the order of
// hooked_symbols.def, which is also the order of the redirect table).
uintptr_t real_of(int i) {
  void* p;
  std::memcpy(&p, reinterpret_cast<const char*>(&g_real) + i * sizeof(void*), sizeof p);
  return reinterpret_cast<uintptr_t>(p);
}

bool contains(const dl_phdr_info* info, uintptr_t addr) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && addr >= info->dlpi_addr + ph.p_vaddr &&
        addr < info->dlpi_addr + ph.p_vaddr + ph.p_memsz)
      return true;
  }
  return false;
}

struct Walk {
  const Redirect* table;
  int n;
  int changed;
  bool failed;
};

// Writes one slot, lifting RELRO protection around the store if needed.
bool write_slot(uintptr_t slot, uintptr_t value, uintptr_t relro_lo, uintptr_t relro_hi) {
  if (slot >= relro_lo && slot < relro_hi) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = slot & ~(static_cast<uintptr_t>(page) - 1);
    if (mprotect(reinterpret_cast<void*>(start), page, PROT_READ | PROT_WRITE) != 0) return false;
    __atomic_store_n(reinterpret_cast<uintptr_t*>(slot), value, __ATOMIC_RELEASE);
    mprotect(reinterpret_cast<void*>(start), page, PROT_READ);
    return true;
  }
  __atomic_store_n(reinterpret_cast<uintptr_t*>(slot), value, __ATOMIC_RELEASE);
  return true;
}

// Dynamic-section addresses are relocated in place by glibc on x86-64; an
// unrelocated one (below the load bias) gets the bias added.
uintptr_t dyn_addr(uintptr_t v, uintptr_t bias) { return v < bias ? v + bias : v; }

void redirect_relocs(Walk* w, uintptr_t bias, const ElfW(Rela)* rel, std::size_t count, const ElfW(Sym)* symtab,
                     const char* strtab, uintptr_t obj_lo, uintptr_t obj_hi, uintptr_t relro_lo, uintptr_t relro_hi) {
  for (std::size_t r = 0; r < count; ++r) {
    unsigned type = ELF64_R_TYPE(rel[r].r_info);
    if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
    const char* name = strtab + symtab[ELF64_R_SYM(rel[r].r_info)].st_name;
    for (int i = 0; i < w->n && i < kHooks; ++i) {
      if (std::strcmp(name, w->table[i].name) != 0) continue;
      uintptr_t slot = bias + rel[r].r_offset;
      uintptr_t cur = *reinterpret_cast<const uintptr_t*>(slot);
      // Bound past the shim, or not bound yet (a lazy PLT slot points into
      // its own object, and would be resolved past the shim on first call).
      bool past = cur == real_of(i) && cur != w->table[i].hook;
      bool lazy = cur >= obj_lo && cur < obj_hi;
      if (past || lazy) {
        if (write_slot(slot, w->table[i].hook, relro_lo, relro_hi)) ++w->changed;
        else w->failed = true;
      }
      break;
    }
  }
}

int on_object(dl_phdr_info* info, size_t, void* data) {
  auto* w = static_cast<Walk*>(data);
  // Not the shim, not the loader, not the allocator's own library (its
  // internal calls to itself must stay as they are).
  if (contains(info, reinterpret_cast<uintptr_t>(&redirect_bound_past_shim)) ||
      contains(info, real_of(0)) || (info->dlpi_name && std::strstr(info->dlpi_name, "/ld-linux")))
    return 0;
  const ElfW(Dyn)* dyn = nullptr;
  uintptr_t relro_lo = 0, relro_hi = 0, lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_DYNAMIC) dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
    if (ph.p_type == PT_GNU_RELRO) relro_lo = info->dlpi_addr + ph.p_vaddr, relro_hi = relro_lo + ph.p_memsz;
    if (ph.p_type == PT_LOAD) {
      uintptr_t a = info->dlpi_addr + ph.p_vaddr;
      if (a < lo) lo = a;
      if (a + ph.p_memsz > hi) hi = a + ph.p_memsz;
    }
  }
  if (!dyn) return 0;
  uintptr_t bias = info->dlpi_addr;
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  const ElfW(Rela)* jmprel = nullptr;
  const ElfW(Rela)* rela = nullptr;
  std::size_t jmprel_size = 0, rela_size = 0;
  bool plt_rela = true;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym)*>(dyn_addr(d->d_un.d_ptr, bias)); break;
      case DT_STRTAB: strtab = reinterpret_cast<const char*>(dyn_addr(d->d_un.d_ptr, bias)); break;
      case DT_JMPREL: jmprel = reinterpret_cast<const ElfW(Rela)*>(dyn_addr(d->d_un.d_ptr, bias)); break;
      case DT_PLTRELSZ: jmprel_size = d->d_un.d_val; break;
      case DT_PLTREL: plt_rela = d->d_un.d_val == DT_RELA; break;
      case DT_RELA: rela = reinterpret_cast<const ElfW(Rela)*>(dyn_addr(d->d_un.d_ptr, bias)); break;
      case DT_RELASZ: rela_size = d->d_un.d_val; break;
      default: break;
    }
  }
  if (!symtab || !strtab) return 0;
  if (jmprel && plt_rela)
    redirect_relocs(w, bias, jmprel, jmprel_size / sizeof(ElfW(Rela)), symtab, strtab, lo, hi, relro_lo, relro_hi);
  if (rela) redirect_relocs(w, bias, rela, rela_size / sizeof(ElfW(Rela)), symtab, strtab, lo, hi, relro_lo, relro_hi);
  return 0;
}

// A bare library name is looked up along the caller's search path (its
// RPATH or RUNPATH, LD_LIBRARY_PATH, ...), which dlopen would take from
// the shim instead. Returns the path to open (path_buf, or file itself).
const char* as_caller_would(const char* file, const void* caller, char* path_buf, std::size_t cap) {
  if (!file || std::strchr(file, '/')) return file;
  Dl_info info;
  struct link_map* map = nullptr;
  if (!dladdr1(caller, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) || !map) return file;
  Dl_serinfo size;
  if (dlinfo(map, RTLD_DI_SERINFOSIZE, &size) != 0 || size.dls_size > (1u << 20)) return file;
  // Off the host's stack, which may be small.
  auto* si = static_cast<Dl_serinfo*>(map_pages(size.dls_size));
  if (!si) return file;
  si->dls_size = size.dls_size;
  si->dls_cnt = size.dls_cnt;
  const char* found = file;
  if (dlinfo(map, RTLD_DI_SERINFOSIZE, si) == 0 && dlinfo(map, RTLD_DI_SERINFO, si) == 0) {
    for (unsigned i = 0; i < si->dls_cnt && found == file; ++i) {
      const char* dir = si->dls_serpath[i].dls_name;
      if (!dir || !*dir) continue;
      format(path_buf, static_cast<int>(cap), "%s/%s", dir, file);
      if (access(path_buf, R_OK) == 0) found = path_buf;
    }
  }
  unmap_pages(si, size.dls_size);
  return found;
}

}  // namespace

int redirect_bound_past_shim(const Redirect* table, int n) {
  Walk w{table, n, 0, false};
  dl_iterate_phdr(on_object, &w);
  if (w.failed)
    log_once(Once::kDeepBind, "cannot redirect the allocator calls of a library opened with RTLD_DEEPBIND "
                              "(mprotect refused); its allocations are not seen");
  return w.changed;
}

void* deepbind_dlopen(const char* file, int mode, const void* caller, const Redirect* table, int n) {
  char path[4096];
  void* h = g_real.dlopen(as_caller_would(file, caller, path, sizeof path), mode);
  if (h) redirect_bound_past_shim(table, n);
  return h;
}

}  // namespace leakwatch::shim
