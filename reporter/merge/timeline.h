// Timeline merge: dumps -> processes (ordered by sequence) and raw sites.
//
// A raw site is a call stack written in position-independent terms: each
// frame is (module build-id, or path when there is none) + offset into the
// module, so the same code at different ASLR bases in many processes of
// one build is one key. Frames in anonymous executable memory (JIT code)
// become "[jit]"; a run of them collapses into one.
//
// Dumps are added one at a time and only compact per-site values are kept,
// so memory grows with (dumps x records), at 20 bytes a record, never
// with whole dumps.
//
// Thread-safety: a builder is used by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "reporter/load/dump_reader.h"

namespace leakwatch::merge {

// Everything symbolization needs about one position-independent frame.
struct FrameKey {
  std::string key;        // "buildid:1234", "[jit]", "?:addr"
  std::string module;     // recorded path ("" for jit/unknown)
  std::string build_id;
  uint64_t vaddr = 0;     // ELF virtual address of the return address
  std::string symbol;     // embedded name (mangled) or ""
  uint64_t symbol_offset = 0;
  bool jit = false;
  bool unknown = false;
};

struct Value {
  uint32_t site;
  float live_bytes;
  float live_count;
  float alloc_bytes;
  uint32_t live_samples;
};

// What a dump says about its process, without its tables.
struct DumpMeta {
  std::string file;
  uint64_t seq = 0, wall_ns = 0, mono_ns = 0, sample_bytes = 0, dropped_samples = 0;
  bool final_dump = false;
  double t_s = 0;  // seconds since the shim started in that process
};

struct ProcessTimeline {
  uint64_t pid = 0, ppid = 0, instance = 0, start_wall_ns = 0, start_mono_ns = 0;
  std::string exe, cmdline, hostname, container_id;
  std::vector<DumpMeta> dumps;             // by sequence (after finish())
  std::vector<std::vector<Value>> values;  // per dump
};

struct Timeline {
  std::vector<FrameKey> frames;              // by frame id
  std::vector<std::vector<uint32_t>> sites;  // raw site id -> frame ids, leaf first
  std::vector<ProcessTimeline> processes;
  static constexpr uint32_t kOtherSite = 0;  // "[other]": records folded past a dump's cap
};

class TimelineBuilder {
 public:
  TimelineBuilder();
  void add(const load::Dump& dump);
  Timeline finish();  // sorts each process's dumps; drops duplicate copies

 private:
  uint32_t frame_id(const load::Dump& d, const load::Frame& f, const std::vector<uint32_t>& module_keys);
  Timeline t_;
  absl::flat_hash_map<std::string, uint32_t> module_keys_;                // build-id (or path) -> key
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, uint32_t> frame_ids_;  // (module key, vaddr) -> frame id
  absl::flat_hash_map<std::vector<uint32_t>, uint32_t> site_ids_;
  std::map<std::pair<uint64_t, uint64_t>, size_t> process_index_;
};

}  // namespace leakwatch::merge
