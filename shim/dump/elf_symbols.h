// Function names for sampled frames, embedded in each dump so that a
// report names functions after the binaries are gone.
//
// Reads the ELF symbol table (.symtab, else .dynsym) of each module file
// once, from a private read-only mapping, and keeps a sorted index. A file
// whose build-id differs from the loaded image (replaced on disk by a
// deploy) is not trusted; the mapped file itself, through
// /proc/self/map_files, is the fallback where the process may open it.
// Not dladdr: it takes the loader's lock. Names stay mangled; the reporter
// demangles.
//
// Thread-safety: one caller at a time (the dump lock). Memory from mmap,
// never malloc.
#pragma once

#include <cstdint>

#include "shim/dump/modules.h"
#include "shim/runtime/internal_alloc.h"

namespace leakwatch::shim {

struct SymbolHit {
  const char* name;    // nullptr if unknown
  uint64_t offset;     // address - symbol start
};

class SymbolResolver {
 public:
  SymbolHit resolve(const ModuleInfo& mod, uintptr_t address);
  // Symbol tables stay mapped for the life of the process (bounded by the
  // number of distinct modules); this releases them (tests).
  void reset();

 private:
  struct Sym {
    uint64_t value;
    uint64_t size;
    const char* name;
  };
  struct File {
    const char* path;
    char build_id[65];
    bool usable;
    Sym* syms;
    uint64_t nsyms;
    void* map;
    uint64_t map_size;
  };
  File* load(const ModuleInfo& mod);
  bool index_fd(File* f, int fd, const char* build_id);  // closes fd
  bool index_file(File* f, const uint8_t* data, uint64_t size, const char* expect_build_id);

  Arena arena_;
  File* files_[1024];
  int nfiles_ = 0;
};

}  // namespace leakwatch::shim
