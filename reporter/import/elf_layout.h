// What an imported heap profile needs from an ELF file to turn a runtime
// address into the file's virtual address: its type and loadable segments
// (the load bias of each mapping), and its GNU build-id.
//
// Thread-safety: a cache is used by one thread. May allocate (bounded:
// at most 4096 program headers are read per file).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace leakwatch::import {

struct ElfLayout {
  bool read = false;  // the file was found and is a 64-bit little-endian ELF
  bool exec = false;  // ET_EXEC (not position-independent)
  std::string build_id;
  struct Segment {
    uint64_t offset, filesz, vaddr;
  };
  std::vector<Segment> loads;  // PT_LOAD segments
  // Load bias of a mapping of this file at `start` with file offset
  // `offset` (runtime address - bias = ELF virtual address). Without the
  // file, guesses: a mapping below 16 MiB is a non-PIE executable (bias 0),
  // anything else position-independent with vaddr == file offset.
  uint64_t bias_for(uint64_t start, uint64_t offset) const;
};

class ElfLayoutCache {
 public:
  // root/path first when root is set, then path.
  const ElfLayout& get(const std::string& path, const std::string& root);

 private:
  std::map<std::string, ElfLayout> cache_;
};

ElfLayout read_elf_layout(const std::string& path);

// The GNU build-id of the ELF file at `path` as lower-case hex, or "" if
// the file is missing, not a regular ELF file, or has no build-id note.
// It lives here, in the lowest stage that needs it (an imported profile's
// modules get their build-ids from it); the symbolizer reads build-ids from
// the ELF handles it already holds.
std::string elf_build_id_hex(const std::string& path);

}  // namespace leakwatch::import
