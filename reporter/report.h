// The reporter pipeline: load -> merge -> symbolize -> analyze, producing
// the Report model that every renderer prints. Dumps are read and merged
// one at a time, so memory follows the number of records, not file sizes.
//
// Errors (no input, nothing valid) come back as a Status for main to print;
// per-file problems become warnings in the report.
//
// Thread-safety: one call at a time per options object; the work inside is
// spread over the cores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reporter/load/dump_reader.h"
#include "reporter/model.h"
#include "reporter/symbolize/dwarf_symbolizer.h"

namespace leakwatch {

// Which processes and which stretch of time a report is about. Empty
// lists select everything; within one list any entry may match, and every
// non-empty list must match.
struct Selection {
  std::vector<uint64_t> pids;
  std::vector<uint64_t> instances;
  std::vector<std::string> hosts;       // the hostname (a pod's name), exactly
  std::vector<std::string> containers;  // a prefix of the container id (12 digits, as `docker ps` shows)
  std::vector<std::string> exes;        // globs on the executable's path or basename
  uint64_t since_wall_ns = 0;           // dumps written at or after
  uint64_t until_wall_ns = UINT64_MAX;  // dumps written at or before
  bool selects_all() const;
  bool wants(const load::Dump& d) const;
};

struct ReportOptions {
  std::vector<std::string> inputs;  // dump files and/or directories
  symbolize::SymbolizerOptions symbols;
  Selection select;
  bool keep_series = true;  // per-process series in each site (for charts)
};

absl::StatusOr<Report> build_report(const ReportOptions& options);

}  // namespace leakwatch
