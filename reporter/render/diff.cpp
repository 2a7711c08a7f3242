#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "reporter/render/render.h"

namespace leakwatch::render {

namespace {
std::string clock_of(uint64_t ns) {
  time_t s = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string signed_bytes(double v) { return (v >= 0 ? "+" : "-") + human_bytes(std::fabs(v)); }

Site as_site(const DiffRow& r) {
  Site s;
  s.frames = r.frames;
  return s;
}
}  // namespace

void diff_text(const Diff& d, size_t top, std::ostream& out) {
  auto dumps = [](size_t n) { return absl::StrCat(n, n == 1 ? " dump" : " dumps"); };
  out << absl::StrFormat("leakwatch diff: %s (%s, %s, last at %s)\n            -> %s (%s, %s, last at %s), %s apart\n",
                         d.a.input, absl::StrJoin(d.a.programs, ", "), dumps(d.a.dumps), clock_of(d.a.wall_ns), d.b.input,
                         absl::StrJoin(d.b.programs, ", "), dumps(d.b.dumps), clock_of(d.b.wall_ns),
                         human_duration(std::fabs(d.seconds_apart)));
  double delta = d.b.live_bytes - d.a.live_bytes;
  out << absl::StrFormat("live: %s -> %s (%s%s)\n", human_bytes(d.a.live_bytes), human_bytes(d.b.live_bytes), signed_bytes(delta),
                         d.seconds_apart > 0 ? absl::StrCat(", ", human_rate(delta / d.seconds_apart)) : "");
  size_t significant = 0;
  for (const auto& r : d.rows) significant += r.significant;
  out << absl::StrFormat("%d site%s changed beyond sampling noise (2 sigma); %d more within it\n\n", significant,
                         significant == 1 ? "" : "s", d.rows.size() - significant);
  if (d.rows.empty()) return;
  out << absl::StrFormat("%11s %11s %11s %11s  %-16s  %s\n", "CHANGE", "RATE", "BEFORE", "AFTER", "ID", "SITE (allocating frame first)");
  size_t shown = 0;
  for (const auto& r : d.rows) {
    if (shown++ >= top) break;
    Site s = as_site(r);
    const SiteFrame* f = own_frame(s);
    double change = r.after - r.before;
    out << absl::StrFormat("%11s %11s %11s %11s  %-16s  %s%s\n", signed_bytes(change),
                           d.seconds_apart > 0 ? human_rate(change / d.seconds_apart) : "-", human_bytes(r.before),
                           human_bytes(r.after), site_id(s), f ? frame_label(*f) : "?",
                           r.significant ? "" : absl::StrFormat("  (within noise, +-%s)", human_bytes(2 * r.noise)));
  }
  if (d.rows.size() > top) out << absl::StrFormat("... %d more (--top N)\n", d.rows.size() - top);
}

void diff_json(const Diff& d, std::ostream& out) {
  using nlohmann::json;
  json rows = json::array();
  for (const auto& r : d.rows) {
    Site s = as_site(r);
    json frames = json::array();
    for (const FrameRef& f : r.frames)
      frames.push_back({{"function", f->function},
                        {"module", f->module},
                        {"file", f->file.empty() ? json(nullptr) : json(f->file)},
                        {"line", f->line > 0 ? json(f->line) : json(nullptr)}});
    rows.push_back({{"id", site_id(s)},
                    {"before_bytes", r.before},
                    {"after_bytes", r.after},
                    {"change_bytes", r.after - r.before},
                    {"noise_bytes", r.noise},
                    {"significant", r.significant},
                    {"frames", frames}});
  }
  auto side = [](const DiffSide& s) {
    return json{{"input", s.input}, {"programs", s.programs}, {"dumps", s.dumps}, {"time_ns", s.wall_ns},
                {"live_bytes", s.live_bytes}, {"sample_bytes", s.sample_bytes}};
  };
  json doc = {{"tool_version", kToolVersion}, {"schema_version", kJsonSchemaVersion}, {"a", side(d.a)}, {"b", side(d.b)},
              {"seconds_apart", d.seconds_apart}, {"sites", rows}, {"warnings", d.warnings}};
  out << doc.dump(1, ' ', false, json::error_handler_t::replace) << "\n";
}

}  // namespace leakwatch::render
