#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
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

std::string plural(size_t n, const char* one, const char* many) { return absl::StrCat(n, " ", n == 1 ? one : many); }

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A process worth a line of its own: it lived long enough for a trend, or
// something of it grows. Short-lived helpers (a wrapper script's commands)
// are summarised.
bool notable(const Report& r, size_t pi) {
  if (r.processes[pi].dumps >= 3) return true;
  for (const Site& s : r.sites)
    if (s.verdict == "growing")
      for (const auto& ser : s.series)
        if (ser.process == pi) return true;
  return false;
}

void header(const Report& r, std::ostream& out) {
  size_t dumps = 0, written = 0;
  bool thinned = false;
  for (const auto& p : r.processes) dumps += p.dumps, written += p.dumps_written, thinned |= p.retention_level > 0;
  uint64_t sample_bytes = r.processes.empty() ? 0 : r.processes.front().sample_bytes;
  out << absl::StrFormat("leakwatch report: %s, %s over %s, sampling every %s\n",
                         plural(r.processes.size(), "process", "processes"), plural(dumps, "dump", "dumps"),
                         human_duration(r.duration_s),
                         sample_bytes <= 1 ? std::string("allocation") : human_bytes(static_cast<double>(sample_bytes)));
  for (const auto& sv : r.services) {
    if (sv.processes.size() < 2) continue;
    std::vector<std::string> how;
    if (sv.incarnations > 1)
      how.push_back(absl::StrCat(plural(sv.incarnations, "incarnation", "incarnations"),
                                 " one after another (restarts: rates are per incarnation, not summed)"));
    if (sv.lanes > 1) how.push_back(absl::StrFormat("up to %d at once (FLEET sums them)", sv.lanes));
    out << absl::StrFormat("  %s: %s, %s\n", base_name(sv.executable), plural(sv.processes.size(), "process", "processes"),
                           absl::StrJoin(how, "; "));
  }
  if (thinned)
    out << absl::StrFormat("  %d of %d dumps kept (thinned evenly over the run to stay within LEAKWATCH_MAX_DUMPS/_BYTES)\n",
                           dumps, written);
  if (std::isfinite(r.detection_floor_bytes_per_s))
    out << absl::StrFormat("detection floor: %s (a slower leak could go unseen in a run this short)\n",
                           human_rate(r.detection_floor_bytes_per_s));
  else
    out << "detection floor: none: no process has 3 dumps, so no trend can be measured (run longer, or dump more often)\n";
  // Post-mortems start here: which processes, and did they end normally.
  size_t listed = 0;
  std::map<std::string, size_t> others;
  // In the order they started: a restarted service's incarnations read 1, 2, ...
  std::vector<size_t> order(r.processes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return r.processes[a].id.start_wall_ns < r.processes[b].id.start_wall_ns;
  });
  for (size_t i : order) {
    const auto& p = r.processes[i];
    if (!notable(r, i) || listed >= 8) {
      ++others[base_name(p.id.exe)];
      continue;
    }
    ++listed;
    const ServiceInfo* sv = p.service < r.services.size() ? &r.services[p.service] : nullptr;
    std::string inc = sv && sv->incarnations > 1 ? absl::StrFormat(", incarnation %d", p.incarnation + 1) : "";
    out << absl::StrFormat("  pid %d %s on %s%s%s: %s over %s, %s\n", p.id.pid, base_name(p.id.exe), p.id.hostname,
                           p.id.container_id.empty() ? "" : " (container " + p.id.container_id.substr(0, 12) + ")", inc,
                           plural(p.dumps, "dump", "dumps"), human_duration(p.duration_s),
                           p.final_dump ? "exited normally" : "no final dump: killed, or still running");
  }
  if (!others.empty()) {
    size_t n = 0;
    std::vector<std::string> names;
    for (const auto& [name, count] : others) {
      n += count;
      names.push_back(count > 1 ? absl::StrCat(name, " x", count) : name);
    }
    out << absl::StrFormat("  and %s (%s)\n", plural(n, "more process", "more processes"), absl::StrJoin(names, ", "));
  }
}

// All of the memory of the processes worth a line: resident size and its
// trend, next to the trends of its parts, then what they say.
void memory(const Report& r, std::ostream& out) {
  bool any = false;
  for (size_t i = 0, shown = 0; i < r.processes.size() && shown < 8; ++i) {
    const auto& p = r.processes[i];
    if (p.memory.empty() || !notable(r, i)) continue;
    ++shown;
    if (!any) out << "memory (resident, as the kernel counts it; the parts' trends are estimates):\n";
    any = true;
    auto line = [&](const MemoryLine& m) {
      if (m.verdict == "growing")
        return absl::StrFormat("%s +%s (growing)", human_bytes(m.last_bytes), human_rate(m.growth_bytes_per_s));
      if (m.verdict == "plateau" || m.verdict == "transient")
        return absl::StrFormat("%s (%s)", human_bytes(m.last_bytes), m.verdict);
      // Rose, but too little evidence that it still grows: not "flat".
      if (m.verdict == "insufficient" && m.growth_low > 0)
        return absl::StrFormat("%s +%s (rising, unsure)", human_bytes(m.last_bytes), human_rate(m.growth_bytes_per_s));
      return absl::StrFormat("%s flat", human_bytes(m.last_bytes));
    };
    const MemoryLine* rss = &p.memory[0];
    std::vector<std::string> parts;
    for (const auto& m : p.memory) {
      if (m.part == "rss") continue;
      const char* label = m.part == "other_anon" ? "other anonymous" : m.part.c_str();
      parts.push_back(absl::StrCat(label, " ", line(m)));
    }
    out << absl::StrFormat("  pid %d %s: %s = %s\n", p.id.pid, base_name(p.id.exe), line(*rss), absl::StrJoin(parts, ", "));
    for (const auto& f : p.findings) out << "    -> " << f << "\n";
  }
}

}  // namespace

void text(const Report& r, const TextOptions& o, std::ostream& out) {
  auto paint = [&](const std::string& s, const char* code) {
    return o.color ? absl::StrCat("\x1b[", code, "m", s, "\x1b[0m") : s;
  };
  header(r, out);
  memory(r, out);
  size_t growing = std::count_if(r.sites.begin(), r.sites.end(), [](const Site& s) { return s.verdict == "growing"; });
  bool rss_grows = false;
  for (const auto& p : r.processes)
    for (const auto& m : p.memory) rss_grows |= m.part == "rss" && m.verdict == "growing";
  out << (growing ? paint(absl::StrFormat("%s\n", plural(growing, "growing site", "growing sites")), "1;31")
          : rss_grows ? paint("no growing allocation site, but resident memory grows: see the memory lines above\n", "1;33")
                      : paint("no growing sites\n", "1;32"));
  const bool fleet = std::any_of(r.sites.begin(), r.sites.end(), [](const Site& s) { return s.concurrent > 1; });
  // Below the floor a site is not known to be flat: "stable" there says
  // "no growth this run could see", and its rate and confidence say so.
  const double floor = r.detection_floor_bytes_per_s;
  auto rate_of = [&](const Site& s) {
    if (s.verdict == "stable" || s.verdict == "insufficient")
      return std::isfinite(floor) ? absl::StrCat("< ", human_rate(floor)) : std::string("?");
    return human_rate(s.growth_bytes_per_s);
  };
  auto conf_of = [&](const Site& s) {
    return s.verdict == "stable" || s.verdict == "insufficient" ? std::string("-")
                                                                : absl::StrFormat("%.1f%%", 100 * s.confidence);
  };
  if (r.sites.empty()) return;  // "no growing sites" said it; no empty table
  out << "\n"
      << absl::StrFormat("%-12s %13s%s %11s %6s %5s  %-16s  %s\n", "VERDICT", "RATE", fleet ? absl::StrFormat(" %13s", "FLEET") : "",
                         "LIVE", "CONF", "PROCS", "ID", "SITE (allocating frame first)");
  size_t shown = 0;
  for (const auto& s : r.sites) {
    if (s.verdict != "growing" && shown >= o.max_sites) break;
    ++shown;
    const char* color = s.verdict == "growing" ? "1;31" : s.verdict == "plateau" ? "33" : "0";
    size_t lead = 0;
    while (lead + 1 < s.frames.size() && library_frame(*s.frames[lead])) ++lead;
    std::string first = s.frames.empty() ? "?" : clip(frame_label(*s.frames[lead]), 110);
    if (lead) absl::StrAppend(&first, "  (via ", lead, " library frame", lead == 1 ? "" : "s", ")");
    std::string fleet_col =
        fleet ? absl::StrFormat(" %13s", s.concurrent > 1 && s.verdict != "stable" && s.verdict != "insufficient"
                                              ? human_rate(s.fleet_growth_bytes_per_s)
                                              : "")
              : "";
    out << paint(absl::StrFormat("%-12s", s.verdict), color)
        << absl::StrFormat(" %13s%s %11s %6s %5d  %-16s  %s\n", rate_of(s), fleet_col, human_bytes(s.live_bytes), conf_of(s),
                           s.processes, site_id(s), first);
    for (size_t i = lead + 1; i < s.frames.size() && i < lead + o.max_frames; ++i)
      out << absl::StrFormat("%-12s %13s%s %11s %6s %5s  %-16s    <- %s\n", "", "", fleet ? absl::StrFormat(" %13s", "") : "",
                             "", "", "", "", clip(frame_label(*s.frames[i]), 110));
  }
  if (shown < r.sites.size())
    out << absl::StrFormat("... %s (--top N, or --format json for all)\n", plural(r.sites.size() - shown, "more site", "more sites"));
}

}  // namespace leakwatch::render
