// Prometheus text exposition format (version 0.0.4), for node_exporter's
// textfile collector or any scraper: docs/formats.md says how to set it up.
//
// Label cardinality is bounded by design: the top `top` sites (in report
// order: growing first, by rate) get one series each, every other site is
// summed into one series with site="other"; memory has one series per
// program and part. No timestamps are written (the textfile collector
// refuses them).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "reporter/render/render.h"

namespace leakwatch::render {

namespace {

double finite(double v) { return std::isfinite(v) ? v : 0; }

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Label values: backslash, double quote and newline are escaped; long C++
// names are clipped (a label is for recognising a site, not for reading it).
std::string label_value(const std::string& v) {
  std::string out;
  size_t n = 0;
  for (char c : v) {
    if (++n > 160) {
      out += "...";
      break;
    }
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string location(const SiteFrame* f) {
  if (!f) return "";
  if (!f->file.empty()) return f->line > 0 ? absl::StrCat(base_name(f->file), ":", f->line) : base_name(f->file);
  return base_name(f->module);
}

std::string num(double v) { return absl::StrFormat("%.10g", finite(v)); }

// All of each program's memory (analyze/memory.h), per part: what the
// latest incarnation of each of its lanes (replicas) holds and how fast it
// grows, summed over the lanes -- one series per program and part, whatever
// restarts and pids come and go.
void memory(const Report& r, const std::string& common, std::ostream& out) {
  struct Part {
    double bytes = 0, rate = 0;
  };
  std::map<std::pair<std::string, std::string>, Part> parts;  // (exe, part)
  std::map<std::pair<size_t, size_t>, size_t> latest;         // (service, lane) -> process
  for (size_t i = 0; i < r.processes.size(); ++i) {
    const auto& p = r.processes[i];
    if (p.memory.empty()) continue;
    auto [it, fresh] = latest.emplace(std::make_pair(p.service, p.lane), i);
    if (!fresh && r.processes[it->second].id.start_wall_ns <= p.id.start_wall_ns) it->second = i;
  }
  for (const auto& [key, i] : latest) {
    const auto& p = r.processes[i];
    for (const auto& m : p.memory) {
      Part& part = parts[{base_name(p.id.exe), m.part}];
      part.bytes += finite(m.last_bytes);
      if (m.verdict == "growing") part.rate += finite(m.growth_bytes_per_s);  // an alert on > 0 means "still growing"
    }
  }
  if (parts.empty()) return;
  auto family = [&](const char* name, const char* help, double Part::*field) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
    for (const auto& [key, part] : parts)
      out << name << "{" << common << ",exe=\"" << label_value(key.first) << "\",part=\"" << key.second << "\"} "
          << num(part.*field) << "\n";
  };
  family("leakwatch_memory_bytes",
         "A program's memory at its last dump, by part (rss = malloc + mmap + other_anon + file + shared + leakwatch; "
         "malloc and mmap are the tracked estimates), summed over its replicas.",
         &Part::bytes);
  family("leakwatch_memory_growth_bytes_per_second",
         "Growth rate of a part of a program's memory while its verdict is growing (else 0), summed over its replicas.", &Part::rate);
}

}  // namespace

const SiteFrame* own_frame(const Site& s) {
  for (const FrameRef& f : s.frames) {
    bool lib = f->file.find("/include/c++/") != std::string::npos ||
               (f->file.empty() && base_name(f->module).rfind("libstdc++", 0) == 0);
    if (!lib) return f.get();
  }
  return s.frames.empty() ? nullptr : s.frames.front().get();
}

std::string site_id(const Site& s) {
  // FNV-1a over what makes a site a site (its symbolized frames), so the
  // same code has the same id in every report, whatever its rank.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& x) {
    for (unsigned char c : x) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
  };
  for (const FrameRef& f : s.frames) {
    mix(f->function);
    mix(f->file);
    mix(absl::StrCat(f->line));
    mix(base_name(f->module));
  }
  return absl::StrFormat("%016x", h);
}

void prom(const Report& r, const PromOptions& o, std::ostream& out) {
  // The program(s) the report is about: two reports of different programs
  // can then share one textfile directory without clashing series.
  std::set<std::string> exes;
  for (const auto& p : r.processes) exes.insert(base_name(p.id.exe));
  std::string program = exes.size() <= 3 ? absl::StrJoin(exes, ",") : absl::StrCat(exes.size(), " programs");
  std::string common = absl::StrCat("program=\"", label_value(program), "\"");

  // A series is named by what does not change while a process runs: the
  // site's id and frame. Its verdict and rank are values, not labels, so a
  // verdict that flips (a leak found, a plateau reached) continues the
  // same series and an alert's `for:` clause keeps counting.
  size_t top = std::min(o.top, r.sites.size());
  std::vector<std::string> labels;
  for (size_t i = 0; i < top; ++i) {
    const Site& s = r.sites[i];
    const SiteFrame* f = own_frame(s);
    labels.push_back(absl::StrCat(common, ",site=\"", site_id(s), "\",function=\"", label_value(f ? f->function : "?"),
                                  "\",location=\"", label_value(location(f)), "\""));
  }
  std::string other_labels = absl::StrCat(common, ",site=\"other\",function=\"\",location=\"\"");
  bool has_other = r.sites.size() > top;

  auto family = [&](const char* name, const char* help, auto value, bool with_other) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
    for (size_t i = 0; i < top; ++i) out << name << "{" << labels[i] << "} " << num(value(r.sites[i])) << "\n";
    if (has_other && with_other) {
      double sum = 0;
      for (size_t i = top; i < r.sites.size(); ++i) sum += finite(value(r.sites[i]));
      out << name << "{" << other_labels << "} " << num(sum) << "\n";
    }
  };
  family("leakwatch_site_live_bytes",
         "Estimated live heap bytes of an allocation site at each process's last dump, summed over processes "
         "(site=\"other\": all sites below the top ones).",
         [](const Site& s) { return s.live_bytes; }, true);
  family("leakwatch_site_growth_bytes_per_second",
         "Estimated growth rate of an allocation site's live heap per process (restarts averaged), bytes per second.",
         [](const Site& s) { return s.growth_bytes_per_s; }, true);
  family("leakwatch_site_fleet_growth_bytes_per_second",
         "Growth rate of the site summed over the processes alive at once (replicas), bytes per second.",
         [](const Site& s) { return s.fleet_growth_bytes_per_s; }, true);
  family("leakwatch_site_growing", "1 while the site's verdict is growing, else 0.",
         [](const Site& s) { return s.verdict == "growing" ? 1.0 : 0.0; }, false);
  family("leakwatch_site_confidence", "Confidence of the site's verdict, 0 to 1 (0 for stable and insufficient).",
         [](const Site& s) { return s.verdict == "stable" || s.verdict == "insufficient" ? 0.0 : s.confidence; }, false);
  family("leakwatch_site_rank", "The site's place in the report (1 = first: growing first, by rate).",
         [&](const Site& s) { return static_cast<double>(&s - r.sites.data() + 1); }, false);

  size_t growing = std::count_if(r.sites.begin(), r.sites.end(), [](const Site& s) { return s.verdict == "growing"; });
  double live = 0;
  for (const auto& p : r.processes) live += p.live_bytes;
  auto scalar = [&](const char* name, const char* help, double v) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
        << name << "{" << common << "} " << num(v) << "\n";
  };
  scalar("leakwatch_growing_sites", "Allocation sites whose verdict is growing.", static_cast<double>(growing));
  scalar("leakwatch_sites", "Allocation sites in the report.", static_cast<double>(r.sites.size()));
  scalar("leakwatch_live_bytes", "Estimated live heap bytes of all reported processes at their last dump.", live);
  scalar("leakwatch_detection_floor_bytes_per_second",
         "Slowest steady growth the run could have flagged (0 when too few dumps to say).",
         r.detection_floor_bytes_per_s);
  scalar("leakwatch_report_duration_seconds", "Longest time covered by one process's dumps.", r.duration_s);
  scalar("leakwatch_processes", "Processes whose dumps were read.", static_cast<double>(r.processes.size()));
  memory(r, common, out);
}

}  // namespace leakwatch::render
