#include "reporter/cli/gate.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reporter/cli/commands.h"
#include "reporter/render/render.h"

namespace leakwatch::cli {

GateOutcome apply_gate(const Report& r, const GateOptions& g) {
  using render::human_rate;
  const Site* worst = nullptr;
  size_t accepted = 0, slow = 0;
  for (const Site& s : r.sites) {
    if (s.verdict != "growing") continue;
    if (s.growth_bytes_per_s < g.threshold_bytes_per_s) {
      ++slow;
      continue;
    }
    if (g.accepted.count(render::site_id(s))) {
      ++accepted;
      continue;
    }
    if (!worst || s.growth_bytes_per_s > worst->growth_bytes_per_s) worst = &s;
  }
  std::string extra = accepted ? absl::StrFormat(" (%d growing site%s accepted by the baseline)", accepted, accepted == 1 ? "" : "s") : "";
  if (worst) {
    const SiteFrame* f = render::own_frame(*worst);
    return {kGrowthFound, absl::StrFormat("gate: failing: site %s %s grows at %s per process (threshold %s)%s",
                                          render::site_id(*worst), f ? render::frame_label(*f) : "?",
                                          human_rate(worst->growth_bytes_per_s), human_rate(g.threshold_bytes_per_s), extra)};
  }
  size_t most_dumps = 0;
  for (const auto& p : r.processes) most_dumps = std::max(most_dumps, p.dumps);
  if (most_dumps < 3)
    return {kInconclusive, absl::StrFormat("gate: inconclusive: %d dump%s in the longest process (3 or more needed): "
                                           "run longer, or pass a shorter --interval",
                                           most_dumps, most_dumps == 1 ? "" : "s")};
  double floor = r.detection_floor_bytes_per_s;
  if (!std::isfinite(floor) || floor > g.threshold_bytes_per_s) {
    uint64_t s = r.processes.empty() ? 0 : r.processes.front().sample_bytes;
    // The floor comes from sampling noise, which grows as the square root
    // of the sampling interval: shrink it by the square of the gap, and
    // by half again for room.
    double ratio = std::isfinite(floor) && floor > 0 ? g.threshold_bytes_per_s / floor : 0;
    double want = s * ratio * ratio / 2;
    return {kInconclusive,
            absl::StrFormat("gate: inconclusive: the detection floor %s is above the threshold %s, so a leak at the "
                            "threshold could go unseen: run longer, or sample more densely (--sample-bytes %s or less)",
                            std::isfinite(floor) ? human_rate(floor) : "n/a", human_rate(g.threshold_bytes_per_s),
                            render::human_bytes(std::max(1.0, std::floor(want))))};
  }
  return {kOk, absl::StrFormat("gate: passed: no site grows at %s or faster (detection floor %s)%s%s",
                               human_rate(g.threshold_bytes_per_s), human_rate(floor), extra,
                               slow ? absl::StrFormat("; %d site%s grow%s more slowly", slow, slow == 1 ? "" : "s", slow == 1 ? "s" : "")
                                    : "")};
}

absl::StatusOr<std::set<std::string>> read_baseline(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--baseline ", path, ": ", std::strerror(errno)));
  std::set<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    absl::string_view v = absl::StripAsciiWhitespace(line);
    if (v.empty()) continue;
    std::string id(v.substr(0, v.find_first_of(" \t")));
    if (id.size() != 16 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("--baseline ", path, ": '", id, "' is not a site id (16 hex digits)"));
    ids.insert(id);
  }
  return ids;
}

}  // namespace leakwatch::cli
