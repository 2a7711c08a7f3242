#include "shim/dump/modules.h"

#include <algorithm>
#include <cstring>
#include <elf.h>

#include "shim/runtime/proc_maps.h"
#include "shim/runtime/safe_read.h"

namespace leakwatch::shim {
namespace {

constexpr int kMaxModules = 4096;

struct Collect {
  Arena* arena;
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

// An ELF image with code becomes a module: its load bias from the program
// headers (read safely from memory), its build-id from its notes.
void add_object(const MappedObject& o, void* arg) {
  auto* c = static_cast<Collect*>(arg);
  if (c->count >= kMaxModules) return;
  Elf64_Phdr ph[64];
  int n = read_program_headers(o.base, ph, 64);
  ModuleInfo m{};
  if (n <= 0 || !load_bias(o, ph, n, &m.bias)) return;
  for (int i = 0; i < n && !m.build_id[0]; ++i) {
    if (ph[i].p_type != PT_NOTE || ph[i].p_filesz == 0 || ph[i].p_filesz > 4096) continue;
    uint8_t notes[4096];
    if (safe_read(m.bias + ph[i].p_vaddr, notes, ph[i].p_filesz)) build_id_from_notes(notes, ph[i].p_filesz, m.build_id);
  }
  m.start = o.lo;
  m.end = o.hi;
  m.kind = format::kElf;
  m.path = arena_strdup(c->arena, o.path);
  m.image_start = o.base;
  m.image_end = o.base_end;
  c->mods[c->count++] = m;
}

void add_jit(uintptr_t start, uintptr_t end, void* arg) {
  auto* c = static_cast<Collect*>(arg);
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

CollectResult collect_modules(Arena* arena, ModuleMap* out) {
  // Scratch from the arena: this runs on a host thread, whose stack may be small.
  auto* scratch = static_cast<char*>(arena->alloc(kObjectScratch, 1));
  Collect c{arena, static_cast<ModuleInfo*>(arena->alloc(sizeof(ModuleInfo) * kMaxModules)), 0};
  if (!scratch || !c.mods) return CollectResult::kNoMemory;
  if (!for_each_object(scratch, add_object, add_jit, &c)) return CollectResult::kNoMaps;
  std::sort(c.mods, c.mods + c.count, [](const ModuleInfo& a, const ModuleInfo& b) { return a.start < b.start; });
  uint64_t sig = 1469598103934665603ull;
  for (int i = 0; i < c.count; ++i)
    if (c.mods[i].kind == format::kElf) sig = (sig ^ c.mods[i].start ^ (c.mods[i].end << 17)) * 1099511628211ull;
  out->mods = c.mods;
  out->count = c.count;
  out->signature = sig;
  return CollectResult::kOk;
}

}  // namespace leakwatch::shim
