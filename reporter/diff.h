// `leakwatch diff A B`: what grew between two dumps (or between the latest
// dumps of two directories), with the sampling noise of each difference so
// that a change of one sample is not read as growth.
//
// Thread-safety: one call at a time per options object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reporter/model.h"
#include "reporter/report.h"

namespace leakwatch {

struct DiffOptions {
  std::string a, b;  // dump files or directories
  symbolize::SymbolizerOptions symbols;
  Selection select;
  size_t top = 30;
};

struct DiffRow {
  std::vector<FrameRef> frames;
  double before = 0, after = 0;  // live bytes
  double noise = 0;              // one standard error of after - before, from sampling
  bool significant = false;      // |after - before| > 2 noise
};

struct DiffSide {
  std::string input;
  std::vector<std::string> programs;  // executables, distinct
  uint64_t wall_ns = 0;               // the latest dump's time
  size_t dumps = 0;
  double live_bytes = 0;
  uint64_t sample_bytes = 0;
};

struct Diff {
  DiffSide a, b;
  double seconds_apart = 0;
  std::vector<DiffRow> rows;  // significant growth first, by change; unchanged sites left out
  std::vector<std::string> warnings;
};

absl::StatusOr<Diff> build_diff(const DiffOptions& options);

}  // namespace leakwatch
