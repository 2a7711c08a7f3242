// The module map at dump time: every loaded ELF object (from the dynamic
// loader, so dlopen'ed libraries appear and dlclose'd ones go) with its
// executable address range, load bias and GNU build-id, plus anonymous
// executable mappings (JIT code) from /proc/self/maps.
//
// Thread-safety: writer thread only (uses static scratch). Takes the
// loader's lock via dl_iterate_phdr. Memory from the caller's Arena.
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
};

struct ModuleMap {
  ModuleInfo* mods = nullptr;  // sorted by start
  int count = 0;
  uint64_t signature = 0;      // changes when the set of modules changes
  // Index of the module containing addr, or -1.
  int find(uintptr_t addr) const;
};

bool collect_modules(Arena* arena, const char* exe_path, ModuleMap* out);

// Reads the GNU build-id from ELF program headers / notes of an in-memory
// or mapped image. Returns hex length (0 if none).
int build_id_from_notes(const uint8_t* notes, uint64_t size, char* hex_out);

}  // namespace leakwatch::shim
