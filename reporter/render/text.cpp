#include <algorithm>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reporter/render/render.h"

namespace leakwatch::render {

namespace {
// Frames inside the C++ standard library (containers, strings): shown
// folded, so the first line of a site is the program's own code.
bool library_frame(const SiteFrame& f) {
  if (f.file.find("/include/c++/") != std::string::npos) return true;
  auto slash = f.module.rfind('/');
  std::string mod = slash == std::string::npos ? f.module : f.module.substr(slash + 1);
  return f.file.empty() && mod.rfind("libstdc++", 0) == 0;
}

std::string clip(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}
}  // namespace

void text(const Report& r, const TextOptions& o, std::ostream& out) {
  auto paint = [&](const std::string& s, const char* code) {
    return o.color ? absl::StrCat("\x1b[", code, "m", s, "\x1b[0m") : s;
  };
  size_t dumps = 0, written = 0;
  bool thinned = false;
  for (const auto& p : r.processes) dumps += p.dumps, written += p.dumps_written, thinned |= p.retention_level > 0;
  uint64_t sample_bytes = r.processes.empty() ? 0 : r.processes.front().sample_bytes;
  auto plural = [](size_t n, const char* one, const char* many) { return absl::StrCat(n, " ", n == 1 ? one : many); };
  out << absl::StrFormat("leakwatch report: %s, %s over %s, sampling every %s\n",
                         plural(r.processes.size(), "process", "processes"), plural(dumps, "dump", "dumps"),
                         human_duration(r.duration_s),
                         sample_bytes <= 1 ? std::string("allocation") : human_bytes(static_cast<double>(sample_bytes)));
  for (const auto& sv : r.services) {
    if (sv.processes.size() < 2) continue;
    auto slash = sv.executable.rfind('/');
    out << absl::StrFormat("  %s: %s, %s one after another (restarts: rates are per incarnation, not summed)%s\n",
                           slash == std::string::npos ? sv.executable : sv.executable.substr(slash + 1),
                           plural(sv.processes.size(), "process", "processes"), plural(sv.incarnations, "incarnation", "incarnations"),
                           sv.lanes > 1 ? absl::StrFormat("; up to %d at once (FLEET sums them)", sv.lanes) : "");
  }
  if (thinned)
    out << absl::StrFormat("  %d of %d dumps kept (thinned evenly over the run to stay within LEAKWATCH_MAX_DUMPS/_BYTES)\n",
                           dumps, written);
  out << absl::StrFormat("detection floor: %s (slower leaks could go unseen in a run this short)\n",
                         std::isfinite(r.detection_floor_bytes_per_s) ? human_rate(r.detection_floor_bytes_per_s)
                                                                       : std::string("n/a (need 3+ dumps)"));
  // Post-mortems start here: which processes, and did they end normally.
  for (size_t i = 0; i < r.processes.size() && i < 8; ++i) {
    const auto& p = r.processes[i];
    auto slash = p.executable.rfind('/');
    const ServiceInfo* sv = p.service < r.services.size() ? &r.services[p.service] : nullptr;
    std::string inc = sv && sv->incarnations > 1 ? absl::StrFormat(", incarnation %d", p.incarnation + 1) : "";
    out << absl::StrFormat("  pid %d %s on %s%s%s: %s over %s, %s\n", p.pid,
                           slash == std::string::npos ? p.executable : p.executable.substr(slash + 1), p.host,
                           p.container.empty() ? "" : " (container " + p.container.substr(0, 12) + ")", inc,
                           plural(p.dumps, "dump", "dumps"), human_duration(p.duration_s),
                           p.final_dump ? "exited normally" : "no final dump: killed, or still running");
  }
  if (r.processes.size() > 8) out << absl::StrFormat("  ... and %d more processes\n", r.processes.size() - 8);
  size_t growing = std::count_if(r.sites.begin(), r.sites.end(), [](const Site& s) { return s.verdict == "growing"; });
  out << (growing ? paint(absl::StrFormat("%d growing site%s\n", growing, growing == 1 ? "" : "s"), "1;31")
                  : paint("no growing sites\n", "1;32"));
  out << "\n"
      << absl::StrFormat("%-12s %12s %11s %6s %5s  %s\n", "VERDICT", "RATE", "LIVE", "CONF", "PROCS", "SITE (allocating frame first)");
  size_t shown = 0;
  for (const auto& s : r.sites) {
    if (s.verdict != "growing" && shown >= o.max_sites) break;
    ++shown;
    const char* color = s.verdict == "growing" ? "1;31" : s.verdict == "plateau" ? "33" : "0";
    size_t lead = 0;
    while (lead + 1 < s.frames.size() && library_frame(*s.frames[lead])) ++lead;
    std::string first = s.frames.empty() ? "?" : clip(frame_label(*s.frames[lead]), 110);
    if (lead) absl::StrAppend(&first, "  (via ", lead, " library frame", lead == 1 ? "" : "s", ")");
    out << paint(absl::StrFormat("%-12s", s.verdict), color)
        << absl::StrFormat(" %12s %11s %5.1f%% %5d  %s\n", human_rate(s.growth_bytes_per_s), human_bytes(s.live_bytes),
                           100 * s.confidence, s.processes, first);
    for (size_t i = lead + 1; i < s.frames.size() && i < lead + o.max_frames; ++i)
      out << absl::StrFormat("%-12s %12s %11s %6s %5s    <- %s\n", "", "", "", "", "", clip(frame_label(*s.frames[i]), 110));
  }
  if (shown < r.sites.size()) out << absl::StrFormat("... %d more sites (use --format json for all)\n", r.sites.size() - shown);
  if (!r.warnings.empty()) {
    out << "\n";
    size_t n = 0;
    for (const auto& w : r.warnings) {
      if (++n > 10) {
        out << absl::StrFormat("warning: ... and %d more\n", r.warnings.size() - 10);
        break;
      }
      out << "warning: " << w << "\n";
    }
  }
}

}  // namespace leakwatch::render
