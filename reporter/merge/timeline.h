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
// with whole dumps. Only stacks that records name become sites, and at
// most kMaxSites distinct sites are kept: past that (only hostile or
// absurd inputs get there) records count toward "[other]" and
// sites_folded says how many.
//
// Thread-safety: a builder is used by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/types/span.h"

#include "reporter/load/dump_reader.h"

namespace leakwatch::merge {

// A module as the frames name it: one per build-id (or per path when
// there is none); the path is the first one seen.
struct ModuleName {
  std::string path;
  std::string build_id;
};

// Everything symbolization needs about one position-independent frame.
// Strings live once in the Timeline; a frame holds indices.
struct FrameKey {
  uint32_t module = 0;    // index into Timeline::modules (meaningless for jit/unknown)
  uint64_t vaddr = 0;     // ELF virtual address of the return address (runtime address if unknown)
  uint32_t symbol = 0;    // index into Timeline::symbols: embedded name (mangled), 0 = ""
  uint64_t symbol_offset = 0;
  bool jit = false;
  bool unknown = false;
  bool mapped = false;  // the "[mmap]" pseudo-frame that leads an mmap site
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
  uint64_t mapping_sample_bytes = 0;  // mmap sites' S (finer: sampler.h in the shim)
  bool final_dump = false;
  std::string reason;  // periodic, final, trigger, high-water ("" in format 1.0)
  uint64_t retention_level = 0;  // > 0: the writer had thinned its dumps (kept ones >= interval << level apart)
  double t_s = 0;      // seconds since the shim started in that process
  load::MemoryFacts memory;
  // Sums over the dump's records: what the shim tracked, by kind.
  double malloc_live = 0;  // live bytes allocated through the malloc family
  double mmap_live = 0;    // resident bytes of anonymous mappings made by the program
  double mmap_mapped = 0;  // their mapped (virtual) bytes
  double malloc_samples = 0, mmap_samples = 0;  // raw samples behind them
  double malloc_alloc = 0;  // bytes ever allocated through the malloc family (estimate)
};

struct ProcessTimeline {
  ProcessIdentity id;  // as its first dump read says
  std::string exe_build_id;  // of the module that is the executable ("" if unknown)
  std::string runtime;       // runtime_of(): node, python, java, beam or ""
  std::vector<DumpMeta> dumps;             // by sequence (after finish())
  std::vector<std::vector<Value>> values;  // per dump
};

struct Timeline {
  std::vector<ModuleName> modules;
  std::vector<std::string> symbols{std::string()};
  std::vector<FrameKey> frames;              // by frame id; 0 is "[no stack]", 1 is "[mmap]"
  std::vector<std::vector<uint32_t>> sites;  // raw site id -> frame ids, leaf first
  std::vector<ProcessTimeline> processes;
  uint64_t sites_folded = 0;                 // distinct stacks past kMaxSites, counted as "[other]"
  static constexpr uint32_t kOtherSite = 0;  // "[other]": records folded past a dump's cap
  static constexpr uint32_t kMmapFrame = 1;  // leads the frames of every mmap site
  static constexpr uint32_t kMaxSites = 1u << 21;
};

// The managed runtime a process runs, when one is recognised from its
// executable and modules: "node", "python", "java", "beam", or "".
std::string runtime_of(const std::string& exe, const std::vector<std::string>& module_paths);

class TimelineBuilder {
 public:
  TimelineBuilder();
  TimelineBuilder(const TimelineBuilder&) = delete;  // site_ids_ points into t_
  TimelineBuilder& operator=(const TimelineBuilder&) = delete;
  void add(const load::Dump& dump);
  Timeline finish();  // sorts each process's dumps; drops duplicate copies

 private:
  uint32_t frame_id(const load::Dump& d, const load::Frame& f, const std::vector<uint32_t>& module_keys);
  Timeline t_;
  uint32_t symbol_id(const std::string& s);
  absl::flat_hash_map<std::string, uint32_t> module_keys_;                // build-id (or path) -> index in modules
  absl::flat_hash_map<std::string, uint32_t> symbol_ids_;                 // name -> index in symbols
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, uint32_t> frame_ids_;  // (module key, vaddr) -> frame id
  // Site ids, hashed by their frames in t_.sites (not a second copy).
  struct SiteHash {
    using is_transparent = void;
    const std::vector<std::vector<uint32_t>>* sites;
    size_t operator()(uint32_t id) const { return (*this)(absl::Span<const uint32_t>((*sites)[id])); }
    size_t operator()(absl::Span<const uint32_t> frames) const { return absl::HashOf(frames); }
  };
  struct SiteEq {
    using is_transparent = void;
    const std::vector<std::vector<uint32_t>>* sites;
    absl::Span<const uint32_t> of(uint32_t id) const { return (*sites)[id]; }
    absl::Span<const uint32_t> of(absl::Span<const uint32_t> s) const { return s; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const { return of(a) == of(b); }
  };
  absl::flat_hash_set<uint32_t, SiteHash, SiteEq> site_ids_;
  std::map<std::pair<uint64_t, uint64_t>, size_t> process_index_;
};

}  // namespace leakwatch::merge
