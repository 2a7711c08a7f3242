// Reads dump files (docs/dump-format.md) into memory, trusting nothing:
// every size, count and index is checked against the bytes that are there
// before anything is allocated or indexed, so a truncated, corrupted,
// foreign or hostile file yields an error, never a crash, an unbounded
// allocation or a silently wrong number.
//
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "reporter/model.h"

namespace leakwatch::load {

struct Module {
  uint64_t start = 0, end = 0, bias = 0;
  std::string path;
  std::string build_id;
  uint32_t kind = 0;  // format::ModuleKind
};

struct Frame {
  uint64_t address = 0;
  int32_t module = -1;  // index into modules, -1 none
  uint32_t symbol = 0;  // index into Dump::strings: mangled name, 0 ("") if unknown
  uint64_t symbol_offset = 0;
};

struct Record {
  int64_t stack = -1;  // index into stacks, -1 = "[other]" (folded past the cap)
  double live_count = 0, live_bytes = 0, alloc_count = 0, alloc_bytes = 0;
  uint64_t live_samples = 0, total_samples = 0;
  uint32_t kind = 0;        // format::RecordKind: 0 malloc family, 1 anonymous mmap
  double mapped_bytes = 0;  // mmap records: bytes mapped (live_bytes is the resident part)
};

// The process's memory as the kernel saw it at the dump (0: not recorded,
// as by dumps of format 1.0).
struct MemoryFacts {
  uint64_t rss = 0, rss_anon = 0, rss_file = 0, rss_shmem = 0, rss_peak = 0, swap = 0, vm_size = 0, threads = 0;
  uint64_t shim_resident = 0;  // of rss_anon, the shim's own tables (format 1.1 dumps from this release on)
};

struct Dump {
  std::string file;
  uint16_t major = 0, minor = 0;
  uint64_t file_size = 0;
  // Identity and run facts (IDNT); unknown fields are kept in `extra`.
  ProcessIdentity id;
  uint64_t seq = 0, wall_ns = 0, mono_ns = 0, sample_bytes = 0, max_frames = 0;
  // Anonymous mappings' mean sampling bytes (sample_bytes before it was recorded).
  uint64_t mapping_sample_bytes = 0;
  uint64_t dropped_samples = 0, records_folded = 0, shim_mapped_bytes = 0;
  bool final_dump = false;
  double interval_s = 0;
  std::string shim_version;
  std::string reason;  // periodic, final, trigger, high-water ("" before format 1.1)
  uint64_t retention_level = 0;
  MemoryFacts memory;
  std::vector<std::pair<std::string, std::string>> extra;
  std::vector<Module> modules;
  // The dump's string table. Frames refer to it by index: many frames name
  // the same function, and a copy per frame would let a small hostile file
  // claim gigabytes.
  std::vector<std::string> strings{std::string()};
  std::vector<Frame> frames;
  std::vector<std::vector<uint32_t>> stacks;  // frame indices, leaf first
  std::vector<Record> records;

  const std::string& symbol(const Frame& f) const { return strings[f.symbol]; }
};

// What a permission error adds, so the user knows what to do.
extern const char kPermissionHint[];

// Parses the bytes of one dump; `name` is used in error messages.
absl::StatusOr<Dump> parse_dump(std::string_view bytes, const std::string& name);
absl::StatusOr<Dump> read_dump(const std::string& path);

// Expands directories (their *.lwdump files, sorted) and files.
// Unreadable or invalid files become warnings ("skipping F: why").
struct LoadResult {
  std::vector<Dump> dumps;
  std::vector<std::string> warnings;
  size_t files_seen = 0;
};
absl::StatusOr<LoadResult> load_inputs(const std::vector<std::string>& inputs);

// The dump files named by inputs (directories expanded, sorted), or an
// error if an input does not exist.
absl::StatusOr<std::vector<std::string>> list_dump_files(const std::vector<std::string>& inputs);

}  // namespace leakwatch::load
