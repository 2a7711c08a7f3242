// The module map at dump time, from /proc/self/maps: every mapped ELF
// object with code (so dlopen'ed libraries appear and dlclose'd ones go)
// with its executable address range, load bias and GNU build-id, plus
// anonymous executable mappings and memfd code (JIT code).
//
// Not dl_iterate_phdr: that holds the loader's lock while it runs, so a
// dump would wait for any host thread inside a dl_iterate_phdr callback
// (or dlopen) -- at exit, or inside a host's malloc. Headers are read with
// safe_read, since another thread may unmap a library meanwhile.
//
// Thread-safety: one caller at a time per Arena; no shared state.
// Memory from the caller's Arena, never malloc.
#pragma once

#include <cstdint>

#include "shim/dump/format.h"
#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

struct ModuleInfo {
  uintptr_t start, end, bias;
  const char* path;      // arena copy
  char build_id[2 * 32 + 1];
  uint32_t kind;         // format::ModuleKind
  uintptr_t image_start, image_end;  // its offset-0 mapping (the ELF header); 0 if unknown
};

struct ModuleMap {
  ModuleInfo* mods = nullptr;  // sorted by start
  int count = 0;
  uint64_t signature = 0;      // changes when the set of modules changes
  // Index of the module containing addr, or -1.
  int find(uintptr_t addr) const;
};

// kNoMaps: /proc/self/maps could not be read (identity.h: open_proc_self).
enum class CollectResult { kOk, kNoMemory, kNoMaps };
CollectResult collect_modules(Arena* arena, ModuleMap* out);

// Reads the GNU build-id from ELF program headers / notes of an in-memory
// or mapped image. Returns hex length (0 if none).
int build_id_from_notes(const uint8_t* notes, uint64_t size, char* hex_out);

}  // namespace leakwatch::shim
