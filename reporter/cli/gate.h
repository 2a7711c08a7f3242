// The CI gate (`run --fail-on-growth`, `report --fail-on-growth`): from a
// report, pass, fail or "cannot tell" -- never a pass on a run that could
// not have seen the leak the gate is about.
//
//   fail (86)          a site is growing at the threshold or faster, and
//                      its id is not in the baseline;
//   inconclusive (87)  otherwise, when the run could not tell: fewer than 3
//                      dumps in every process, or a detection floor above
//                      the threshold (a leak at the threshold could have
//                      gone unseen), or nothing was measured at all;
//   pass (0)           otherwise.
//
// Thread-safety: pure functions (read_baseline reads a file).
#pragma once

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "reporter/model.h"

namespace leakwatch::cli {

// The threshold when --fail-on-growth has none: a site growing 16 KiB/s
// gains 1.3 GiB a day.
constexpr double kDefaultGateRate = 16 * 1024;

struct GateOptions {
  bool enabled = false;
  double threshold_bytes_per_s = kDefaultGateRate;
  std::set<std::string> accepted;  // site ids from the baseline file
};

struct GateOutcome {
  int status = 0;
  std::string line;  // "gate: ..." one line saying why, and what to change
};

GateOutcome apply_gate(const Report& r, const GateOptions& g);

// Site ids, one per line ("#" starts a comment; the id is the first word,
// so a copied report line works too).
absl::StatusOr<std::set<std::string>> read_baseline(const std::string& path);

}  // namespace leakwatch::cli
