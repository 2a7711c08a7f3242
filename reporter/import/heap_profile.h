// Import of other tools' heap profiles, so existing dumps get growth
// verdicts: each file becomes a load::Dump and the normal pipeline (merge,
// symbolize, analyze, render) takes it from there.
//
// Formats (text, as the allocators write them):
// - jemalloc `prof.dump` / `lg_prof_interval` / `prof_final` dumps:
//   first line "heap_v2/<mean sample bytes>", one "@ addr..." line per
//   stack followed by "  t*: objs: bytes [cum_objs: cum_bytes]", then
//   "MAPPED_LIBRARIES:" and the process's /proc/self/maps.
//   Files are named <prefix>.<pid>.<seq>.<kind><n>.heap (kind i, m, u, f;
//   f = the dump at exit).
// - gperftools HEAPPROFILE dumps: first line
//   "heap profile: objs: bytes [objs: bytes] @ heapprofile" (every
//   allocation recorded) or "... @ heap_v2/<mean sample bytes>" (sampled,
//   as from MallocExtension::GetHeapSample), one "objs: bytes [objs:
//   bytes] @ addr..." line per stack, then MAPPED_LIBRARIES. Files are named
//   <prefix>.<seq>.heap.
// Sampled counts are unsampled the way jeprof and pprof do it: a stack
// with n samples of mean size a is scaled by 1 / (1 - exp(-a / period)).
//
// Trust: nothing in a file is trusted. Files are capped in size, lines in
// length, stacks in depth and number (past 2^18 stacks the rest count as
// "[other]"); lines are read one at a time; numbers are range-checked; a
// bad file yields an error (the caller warns once and skips it), never a
// crash or an unbounded allocation. A 64 MiB profile of 1.3M stacks costs
// ~0.4 GB of memory.
//
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "reporter/load/dump_reader.h"

namespace leakwatch::import {

enum class Format { kNone, kJemalloc, kGperftools };

// What the first bytes of a file say it is.
Format sniff(std::string_view head);

// What a heap profile's file name says (all optional).
struct NameFacts {
  std::string group;      // files of one process share it: dir + prefix (+ pid)
  uint64_t pid = 0;       // jemalloc names carry it
  int64_t seq = -1;       // dump sequence number
  bool final_dump = false;  // jemalloc ".f.heap": written at exit
};
NameFacts facts_from_name(const std::string& path, Format f);

struct ParseOptions {
  std::string root;  // --root: ELF files (for load bias and build-id) are looked up as root/path first
};

// Parses one profile's text. Identity and times are left for the caller
// (import_heap_profiles) to fill in.
absl::StatusOr<load::Dump> parse_heap_profile(std::string_view text, const std::string& name,
                                              const ParseOptions& options = {});

// The same, sharing ELF facts across the files of one import.
class ElfLayoutCache;
absl::StatusOr<load::Dump> parse_heap_profile_cached(std::string_view text, const std::string& name,
                                                     const ParseOptions& options, ElfLayoutCache* elf);

// Heap profiles among the inputs: *.heap files under the directories, and
// files named directly whose contents look like one (removed from
// *dump_files, which list_dump_files filled).
std::vector<std::string> take_heap_profiles(const std::vector<std::string>& inputs,
                                            std::vector<std::string>* dump_files);

// Reads the files, groups them into processes (by file name), orders each
// process's dumps by sequence number and gives them times: the files'
// modification times, relative to the process's first dump; when those do
// not follow the sequence (files copied without keeping times), the dumps
// are taken as 1 s apart and a warning says so. Each dump goes to add() in
// order; each unreadable file becomes one warning and is skipped.
void import_heap_profiles(const std::vector<std::string>& files, const ParseOptions& options,
                          const std::function<void(const load::Dump&)>& add, std::vector<std::string>* warnings);

}  // namespace leakwatch::import
