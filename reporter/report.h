// The reporter pipeline: load -> merge -> symbolize -> analyze, producing
// the Report model that every renderer prints. Dumps are read and merged
// one at a time, so memory follows the number of records, not file sizes.
//
// Errors (no input, nothing valid) come back as a Status for main to print;
// per-file problems become warnings in the report.
//
// Thread-safety: single-threaded.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reporter/model.h"
#include "reporter/symbolize/dwarf_symbolizer.h"

namespace leakwatch {

struct ReportOptions {
  std::vector<std::string> inputs;  // dump files and/or directories
  symbolize::SymbolizerOptions symbols;
  bool keep_series = true;  // per-process series in each site (for charts)
};

absl::StatusOr<Report> build_report(const ReportOptions& options);

}  // namespace leakwatch
