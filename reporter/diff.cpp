#include "reporter/diff.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace leakwatch {

namespace {

std::string key_of(const Site& s) {
  std::string k;
  for (const FrameRef& f : s.frames) absl::StrAppend(&k, f->function, "\x1f", f->module, "\x1f", f->file, ":", f->line, "\n");
  return k;
}

absl::StatusOr<Report> side(const DiffOptions& o, const std::string& input, DiffSide* out) {
  ReportOptions ro;
  ro.inputs = {input};
  ro.symbols = o.symbols;
  ro.select = o.select;
  ro.keep_series = false;
  auto r = build_report(ro);
  if (!r.ok()) return r.status();
  out->input = input;
  std::set<std::string> progs;
  for (const auto& p : r->processes) {
    progs.insert(p.id.exe);
    out->dumps += p.dumps;
    out->live_bytes += p.live_bytes;
    out->sample_bytes = std::max(out->sample_bytes, p.sample_bytes);
  }
  out->programs.assign(progs.begin(), progs.end());
  out->wall_ns = r->end_wall_ns;
  return r;
}

}  // namespace

absl::StatusOr<Diff> build_diff(const DiffOptions& o) {
  Diff d;
  auto ra = side(o, o.a, &d.a);
  if (!ra.ok()) return ra.status();
  auto rb = side(o, o.b, &d.b);
  if (!rb.ok()) return rb.status();
  for (const auto* r : {&*ra, &*rb})
    for (const auto& w : r->warnings) d.warnings.push_back(w);
  if (d.a.programs != d.b.programs)
    d.warnings.push_back(absl::StrCat("the two sides are different programs (", absl::StrJoin(d.a.programs, ", "), " vs ",
                                      absl::StrJoin(d.b.programs, ", "), "): sites are matched by name only"));
  d.seconds_apart = (static_cast<double>(d.b.wall_ns) - static_cast<double>(d.a.wall_ns)) / 1e9;
  if (d.seconds_apart < 0) d.warnings.push_back("B was written before A: growth reads as shrinking");

  struct Acc {
    const Site* site = nullptr;
    double before = 0, after = 0;
    uint64_t k_before = 0, k_after = 0;
  };
  std::map<std::string, Acc> by_key;
  for (const Site& s : ra->sites) {
    Acc& a = by_key[key_of(s)];
    a.site = &s, a.before += s.live_bytes, a.k_before += s.live_samples;
  }
  for (const Site& s : rb->sites) {
    Acc& a = by_key[key_of(s)];
    if (!a.site) a.site = &s;
    a.after += s.live_bytes, a.k_after += s.live_samples;
  }
  // A site seen through k samples of mean spacing S is known to about S * sqrt(k).
  const double S = static_cast<double>(std::max(d.a.sample_bytes, d.b.sample_bytes));
  for (auto& [k, a] : by_key) {
    if (a.before == a.after) continue;
    DiffRow row;
    row.frames = a.site->frames;
    row.before = a.before;
    row.after = a.after;
    row.noise = S <= 1 ? 0 : S * std::sqrt(static_cast<double>(a.k_before + a.k_after));
    row.significant = std::fabs(a.after - a.before) > 2 * row.noise;
    d.rows.push_back(std::move(row));
  }
  std::stable_sort(d.rows.begin(), d.rows.end(), [](const DiffRow& x, const DiffRow& y) {
    if (x.significant != y.significant) return x.significant;
    return (x.after - x.before) > (y.after - y.before);
  });
  return d;
}

}  // namespace leakwatch
