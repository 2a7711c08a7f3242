// The report model: what every renderer prints. Built by report.cpp from
// the stages load -> merge -> symbolize -> analyze.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace leakwatch {

// Which process a dump came from, as its identity section (IDNT) records it:
// one type from the reader through merge to the renderers, so a field added
// to the dump is added once.
struct ProcessIdentity {
  uint64_t pid = 0, ppid = 0;
  uint64_t instance = 0;       // random per process: pids repeat across containers and restarts
  uint64_t start_wall_ns = 0;  // process start, wall clock
  uint64_t start_mono_ns = 0;  // the shim's start, CLOCK_MONOTONIC (compares only within one boot)
  uint64_t pid_ns = 0, mnt_ns = 0;  // namespace inodes (0 if unknown)
  std::string exe, argv0, cmdline, hostname;
  std::string container_id;  // "" when /proc did not tell
  std::string boot_id;

  bool operator==(const ProcessIdentity&) const = default;
};

struct SiteFrame {
  std::string function;  // demangled; "[jit]", "[other]" or "module+0xoff" when unknown
  std::string module;    // recorded path
  std::string file;      // "" when unknown
  int line = 0;          // 0 when unknown
  bool inlined = false;
};

// A shared, immutable frame. A report can hold millions of sites whose
// stacks repeat the same few thousand frames; each site keeps references,
// not copies of the strings.
class FrameRef {
 public:
  FrameRef(std::shared_ptr<const SiteFrame> f) : f_(std::move(f)) {}  // NOLINT: implicit by design
  FrameRef(SiteFrame f) : f_(std::make_shared<const SiteFrame>(std::move(f))) {}  // NOLINT
  FrameRef(std::string function, std::string module, std::string file, int line, bool inlined)
      : FrameRef(SiteFrame{std::move(function), std::move(module), std::move(file), line, inlined}) {}
  const SiteFrame& operator*() const { return *f_; }
  const SiteFrame* operator->() const { return f_.get(); }
  const SiteFrame* get() const { return f_.get(); }

 private:
  std::shared_ptr<const SiteFrame> f_;
};

struct SitePoint {
  double t_s;  // seconds since Report::start_wall_ns (wall clock: incarnations line up one after another)
  double live_bytes;
};

// One part of a process's memory, over its dumps (analyze/memory.h).
struct MemoryLine {
  std::string part;     // rss, malloc, mmap, other_anon, file, shared
  std::string verdict;  // as a site's ("" when not measured)
  double growth_bytes_per_s = 0;
  double growth_low = 0, growth_high = 0;
  double confidence = 0;
  double last_bytes = 0;
  std::string reason;  // why the verdict, in words (growth.h)
};

struct MemoryPoint {
  double t_s;  // seconds since Report::start_wall_ns
  double rss, rss_anon, rss_file, rss_shmem, malloc_live, mmap_live;
};

struct SiteProcessSeries {
  size_t process;  // index into Report::processes
  std::vector<SitePoint> points;
};

struct Site {
  std::string verdict;  // growing|plateau|stable|transient|insufficient
  // Per process: a restarted process's incarnations are averaged (each
  // measures the same leak), concurrent processes averaged too.
  double growth_bytes_per_s = 0;
  double growth_low = 0, growth_high = 0;
  // The fleet: the sum over processes alive at once (equal to the above
  // when they ran one at a time).
  double fleet_growth_bytes_per_s = 0;
  size_t concurrent = 1;  // processes with this site alive at once (lanes)
  double live_bytes = 0;  // at the latest incarnation's last dump, summed over concurrent processes
  double live_count = 0;
  double alloc_bytes = 0;  // cumulative, summed over processes
  double confidence = 0;
  uint64_t live_samples = 0;
  size_t processes = 0;
  std::vector<FrameRef> frames;  // leaf first, allocator/shim frames removed
  std::vector<SiteProcessSeries> series;
};

struct ProcessInfo {
  ProcessIdentity id;
  std::string build_id;  // of the executable, "" when unknown
  size_t dumps = 0;
  uint64_t first_dump_wall_ns = 0, last_dump_wall_ns = 0;
  // When the shim started in it, on the wall clock of its first dump: a
  // process that allocates rarely (a server's master) dumps first long after.
  uint64_t started_wall_ns = 0;
  double duration_s = 0;  // from shim start to last dump
  uint64_t sample_bytes = 0;
  bool final_dump = false;  // exited normally (a final dump exists)
  uint64_t dropped_samples = 0;
  double live_bytes = 0;  // total estimated live heap at the last dump
  uint64_t dumps_written = 0;  // the last dump's sequence number + 1: more than `dumps` when retention thinned
  uint64_t retention_level = 0;  // > 0: kept dumps thinned to at least interval << level apart
  std::string last_reason;     // why the last dump was written (periodic, final, trigger, high-water)
  // All of its memory (empty when its dumps did not record it).
  std::string runtime;                // node, python, java, beam, or ""
  std::vector<MemoryLine> memory;     // one per part, rss first
  std::vector<MemoryPoint> memory_series;
  std::vector<std::string> findings;  // where memory grows and what to do next, in plain words
  // Processes of one executable and build form a service; within it,
  // processes never alive at the same time share a lane (one after another:
  // restarts, an OOM-kill loop), and are its incarnations, in order.
  size_t service = 0, lane = 0, incarnation = 0;
};

// One executable and build, and the processes that ran it.
struct ServiceInfo {
  std::string executable;
  std::string build_id;
  std::vector<size_t> processes;  // indices into Report::processes, by start
  size_t lanes = 0;               // the most processes alive at once
  size_t incarnations = 0;        // the longest run of restarts in one lane
};

// A module (executable or shared library) that site frames name, with its
// ELF build-id, so formats like pprof can let another machine symbolize.
struct ModuleInfo {
  std::string path;      // recorded path (SiteFrame::module)
  std::string build_id;  // hex, "" when the module has none
};

struct Report {
  // What the report is about: the program `run` was given, else the
  // executable with the most dumps (not a wrapper script's helpers).
  std::string subject;
  std::vector<Site> sites;
  size_t sites_omitted = 0;  // ranked below --top (never a growing one)
  std::vector<ProcessInfo> processes;
  std::vector<ServiceInfo> services;
  uint64_t start_wall_ns = 0, end_wall_ns = 0;  // first and last dump read, wall clock
  std::vector<ModuleInfo> modules;  // by path; the first build-id seen for a path
  double detection_floor_bytes_per_s = 0;
  std::vector<std::string> warnings;
  size_t files_seen = 0;
  size_t dumps_read = 0;
  double duration_s = 0;  // end - start: the wall-clock span of all the dumps read
  double longest_process_s = 0;
};

}  // namespace leakwatch
