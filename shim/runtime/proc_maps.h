// /proc/self/maps, read without the loader's lock: the address ranges of
// every mapping, with the file behind it. Both the module map of a dump
// and the unwinder's view of loaded objects are built from it, because
// dl_iterate_phdr holds the loader's lock while it runs, and a host thread
// may sit inside a dl_iterate_phdr callback (or dlopen) for a long time.
//
// Thread-safety: any thread; the caller provides the buffer. Never
// allocates. Async-signal-safe (open, read, close).
#pragma once

#include <cstddef>
#include <cstdint>
#include <elf.h>

namespace leakwatch::shim {

// One line: "start-end perms offset dev inode   path".
struct MapLine {
  uintptr_t start = 0, end = 0;
  uint64_t offset = 0, inode = 0;
  char perms[5] = "";
  char dev[16] = "";
  const char* path = "";  // into the caller's buffer; a " (deleted)" suffix removed
};

bool parse_map_line(char* line, MapLine* out);

// Calls fn(line, ctx) for each line. buf is scratch of cap bytes (64 KiB
// is plenty: a line longer than the buffer ends the walk).
using MappingFn = void (*)(const MapLine& line, void* ctx);
bool for_each_mapping(char* buf, std::size_t cap, MappingFn fn, void* ctx);

// The program headers of an ELF image whose first page is mapped at base,
// read with safe_read. Returns their number (at most cap), or -1.
int read_program_headers(uintptr_t base, Elf64_Phdr* out, int cap);

// A file-backed ELF object assembled from consecutive mappings of one file.
struct MappedObject {
  uint64_t inode = 0;
  char dev[16] = "";
  const char* path = nullptr;     // valid during the callback only
  uintptr_t base = 0, base_end = 0;  // its offset-0 mapping (the ELF header); 0 if not seen
  uintptr_t lo = 0, hi = 0;       // executable range (hi == 0: no code)
  uintptr_t x_start = 0;          // first executable mapping, and its file offset
  uint64_t x_offset = 0;
};

// The load bias of an object from its program headers: runtime address of
// ELF virtual address 0. False if its code segment is not found.
bool load_bias(const MappedObject& o, const Elf64_Phdr* ph, int n, uintptr_t* bias);

// Walks /proc/self/maps and calls on_object for every file-backed object
// with code (and its offset-0 mapping), and on_jit for anonymous
// executable memory and executable memfd mappings (JIT code; may be null).
// scratch: kObjectScratch bytes.
constexpr std::size_t kObjectScratch = 68 * 1024;
using ObjectFn = void (*)(const MappedObject& object, void* ctx);
using JitFn = void (*)(uintptr_t start, uintptr_t end, void* ctx);
bool for_each_object(char* scratch, ObjectFn on_object, JitFn on_jit, void* ctx);

}  // namespace leakwatch::shim
