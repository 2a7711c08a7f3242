// HTML output: one self-contained page (inline CSS, inline SVG, a little
// inline JS; nothing is fetched, so it opens offline and from a ticket
// attachment). Everything is drawn here, in C++, as static markup: the page
// reads the same with JavaScript off; the script only adds interaction
// (zooming the flame graph, highlighting a site's lines in the chart).
//
// Sections: summary, chart of live bytes over time for the top sites (one
// line per site and process, from Site::series), the ranked table, and a
// flame graph of growth (sites with a positive growth rate, weighted by it,
// root at the top).
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reporter/render/render.h"

namespace leakwatch::render {

namespace {

std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

double finite(double v) { return std::isfinite(v) ? v : 0; }

// Distinct colours for chart lines (colour-blind friendly order).
const char* kPalette[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// 1-2-5 steps: the smallest nice step with about `n` steps up to max.
double nice_step(double max, int n) {
  double raw = max / n;
  if (!(raw > 0)) return 1;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

const char* kStyle = R"CSS(
:root { --fg:#1d2330; --muted:#5b6475; --line:#e3e6ec; --bg:#ffffff; --grow:#c62828; --plat:#b26a00; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.summary { color: var(--muted); margin: 0 0 2px; }
.summary b { color: var(--fg); }
.chart-wrap { border: 1px solid var(--line); border-radius: 6px; padding: 8px 8px 4px; }
svg { display: block; width: 100%; height: auto; font: 12px system-ui, "DejaVu Sans", sans-serif; }
.axis line, .grid line { stroke: var(--line); }
.axis text { fill: var(--muted); }
.series { fill: none; stroke-width: 2.2; stroke-linejoin: round; }
.series.dim { opacity: 0.12; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 4px; }
.legend span { white-space: nowrap; cursor: pointer; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.site:hover { background: #f6f7f9; }
tr.site.hl { background: #fff4e5; }
.verdict { font-weight: 600; }
.v-growing { color: var(--grow); }
.v-plateau { color: var(--plat); }
.v-stable, .v-transient, .v-insufficient { color: var(--muted); }
code { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
details ol { margin: 4px 0 0; padding-left: 22px; }
.loc { color: var(--muted); }
.flame rect { stroke: #fff; stroke-width: 0.5; cursor: pointer; }
.flame text { fill: #1d2330; pointer-events: none; font-size: 11px; }
.note { color: var(--muted); font-size: 12px; }
.warn { color: #8a4b00; font-size: 12px; margin: 2px 0; }
)CSS";

// Interaction only; the markup above is complete without it.
const char* kScript = R"JS(
(function () {
  window.addEventListener('error', function (e) {
    document.body.dataset.errors = (document.body.dataset.errors || '') + (e.message || 'error') + ';';
  });
  // Chart: hovering or clicking a legend entry or a table row highlights that site's lines.
  var lines = document.querySelectorAll('path.series');
  function highlight(rank) {
    lines.forEach(function (p) { p.classList.toggle('dim', rank !== null && p.dataset.rank !== rank); });
    document.querySelectorAll('tr.site').forEach(function (r) { r.classList.toggle('hl', r.dataset.rank === rank); });
  }
  document.querySelectorAll('[data-rank]').forEach(function (el) {
    if (el.tagName === 'path') return;
    el.addEventListener('mouseenter', function () { if (document.querySelector('path.series[data-rank="' + el.dataset.rank + '"]')) highlight(el.dataset.rank); });
    el.addEventListener('mouseleave', function () { highlight(null); });
  });
  // Flame graph: click a frame to zoom to it, click the root to zoom out.
  var flame = document.querySelector('svg.flame');
  if (flame) {
    var W = parseFloat(flame.dataset.width);
    var nodes = Array.prototype.slice.call(flame.querySelectorAll('g.node'));
    function zoom(x0, x1) {
      var k = W / (x1 - x0);
      nodes.forEach(function (g) {
        var x = parseFloat(g.dataset.x), w = parseFloat(g.dataset.w);
        var r = g.querySelector('rect'), t = g.querySelector('text');
        var nx = (x - x0) * k, nw = w * k;
        var visible = x + w > x0 + 1e-9 && x < x1 - 1e-9 && nw >= 0.5;
        g.style.display = visible ? '' : 'none';
        if (!visible) return;
        r.setAttribute('x', nx.toFixed(2));
        r.setAttribute('width', nw.toFixed(2));
        t.setAttribute('x', (nx + 3).toFixed(2));
        var full = g.dataset.label, fit = Math.floor((nw - 6) / 6.6);
        t.textContent = fit >= full.length ? full : (fit > 2 ? full.slice(0, fit - 1) + '\u2026' : '');
      });
    }
    nodes.forEach(function (g) {
      g.addEventListener('click', function () {
        var x = parseFloat(g.dataset.x), w = parseFloat(g.dataset.w);
        zoom(x, x + w);
      });
    });
  }
  document.body.dataset.ready = '1';
})();
)JS";

struct FlameNode {
  std::string name;
  double weight = 0;
  std::map<std::string, std::unique_ptr<FlameNode>> children;
};

void flame_layout(const FlameNode& n, double x, int depth, double scale, double width, size_t* budget,
                  std::ostream& out) {
  double w = n.weight * scale;
  if (w < 0.5 || *budget == 0) return;  // too thin to see; bounded node count
  --*budget;
  const double h = 18;
  // Warm colours, stable per function name.
  uint32_t hash = 2166136261u;
  for (unsigned char c : n.name) hash = (hash ^ c) * 16777619u;
  int red = 205 + static_cast<int>(hash % 50), green = 80 + static_cast<int>((hash >> 8) % 120),
      blue = 40 + static_cast<int>((hash >> 16) % 45);
  std::string label = n.name;
  size_t fit = w > 6 ? static_cast<size_t>((w - 6) / 6.6) : 0;
  std::string shown = label.size() <= fit ? label : (fit > 2 ? label.substr(0, fit - 1) + "\u2026" : "");
  out << absl::StrFormat(
      "<g class=\"node\" data-x=\"%.4f\" data-w=\"%.4f\" data-label=\"%s\"><title>%s\n%s/s of growth</title>"
      "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.0f\" fill=\"rgb(%d,%d,%d)\"/>"
      "<text x=\"%.2f\" y=\"%.0f\">%s</text></g>\n",
      x, w, esc(label), esc(label), human_bytes(n.weight), x, depth * h, w, h - 1, red, green, blue, x + 3,
      depth * h + 13, esc(shown));
  double cx = x;
  std::vector<const FlameNode*> kids;
  for (const auto& [_, c] : n.children) kids.push_back(c.get());
  std::stable_sort(kids.begin(), kids.end(), [](auto* a, auto* b) { return a->weight > b->weight; });
  for (const FlameNode* c : kids) {
    flame_layout(*c, cx, depth + 1, scale, width, budget, out);
    cx += c->weight * scale;
  }
}

int flame_depth(const FlameNode& n, double scale) {
  if (n.weight * scale < 0.5) return 0;
  int d = 0;
  for (const auto& [_, c] : n.children) d = std::max(d, flame_depth(*c, scale));
  return d + 1;
}

void chart(const Report& r, const std::vector<size_t>& charted, std::ostream& out) {
  const double W = 1100, H = 340, L = 78, R = 16, T = 12, B = 36;
  double tmax = 0, ymax = 0;
  for (size_t i : charted)
    for (const auto& ps : r.sites[i].series)
      for (const auto& p : ps.points) tmax = std::max(tmax, finite(p.t_s)), ymax = std::max(ymax, finite(p.live_bytes));
  if (tmax <= 0) tmax = 1;
  if (ymax <= 0) ymax = 1;
  // Y ticks in a binary unit (KiB, MiB, ...) at 1-2-5 steps of that unit.
  double unit = 1;
  const char* unit_name[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (ymax / unit >= 1024 && u < 4) unit *= 1024, ++u;
  double ystep = nice_step(ymax / unit, 5) * unit;
  double ytop = std::ceil(ymax / ystep) * ystep;
  double tstep = nice_step(tmax, 8);
  double ttop = std::ceil(tmax / tstep) * tstep;
  auto X = [&](double t) { return L + (W - L - R) * t / ttop; };
  auto Y = [&](double b) { return T + (H - T - B) * (1 - b / ytop); };
  out << absl::StrFormat("<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"live bytes over time\">\n", W, H);
  out << "<g class=\"axis\">\n";
  for (double y = 0; y <= ytop * 1.0001; y += ystep)
    out << absl::StrFormat("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g %s</text>\n",
                           L, W - R, Y(y), Y(y), L - 6, Y(y) + 4, std::round(y / unit * 100) / 100, unit_name[u]);
  for (double t = 0; t <= ttop * 1.0001; t += tstep)
    out << absl::StrFormat("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                           X(t), X(t), H - B, H - B + 5, X(t), H - B + 19, human_duration(t));
  out << absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">time since process start</text>\n", W - R,
                         H - 3);
  out << "</g>\n";
  for (size_t k = 0; k < charted.size(); ++k) {
    const Site& s = r.sites[charted[k]];
    size_t drawn = 0;
    for (const auto& ps : s.series) {
      if (ps.points.empty() || ++drawn > 20) continue;  // at most 20 processes' lines per site
      std::string d;
      for (size_t j = 0; j < ps.points.size(); ++j)
        absl::StrAppend(&d, j ? " L" : "M", absl::StrFormat("%.1f,%.1f", X(finite(ps.points[j].t_s)),
                                                              Y(finite(ps.points[j].live_bytes))));
      out << absl::StrFormat("<path class=\"series\" data-rank=\"%d\" stroke=\"%s\" d=\"%s\"/>\n", charted[k] + 1,
                             kPalette[k % 8], d);
    }
  }
  out << "</svg>\n";
}

std::string frame_html(const SiteFrame& f) {
  std::string loc;
  if (!f.file.empty()) loc = f.line > 0 ? absl::StrCat(base_name(f.file), ":", f.line) : base_name(f.file);
  else if (!f.module.empty()) loc = base_name(f.module);
  return absl::StrCat("<code>", esc(f.function), "</code>", loc.empty() ? "" : " <span class=\"loc\">" + esc(loc) + "</span>",
                      f.inlined ? " <span class=\"loc\">[inlined]</span>" : "");
}

// All of each process's memory, as the text report's memory lines: the
// resident size and its trend, then its parts, then what they say.
void memory(const Report& r, std::ostream& out) {
  bool any = false;
  for (size_t i = 0, shown = 0; i < r.processes.size() && shown < 10; ++i) {
    const auto& p = r.processes[i];
    if (p.memory.empty() || (p.dumps < 3 && p.findings.empty())) continue;
    if (!any)
      out << "<h2>Memory</h2>\n<table class=\"memory\">\n<thead><tr><th>process</th>"
             "<th>resident</th><th>malloc</th><th>mmap</th><th>other anonymous</th><th>file</th><th>shared</th>"
             "<th>leakwatch</th></tr></thead>\n<tbody>\n";
    any = true;
    ++shown;
    out << absl::StrFormat("<tr class=\"memory\" data-pid=\"%d\"><td>pid %d <code>%s</code></td>", p.id.pid, p.id.pid,
                           esc(base_name(p.id.exe)));
    for (const char* part : {"rss", "malloc", "mmap", "other_anon", "file", "shared", "leakwatch"}) {
      auto m = std::find_if(p.memory.begin(), p.memory.end(), [&](const MemoryLine& l) { return l.part == part; });
      if (m == p.memory.end()) {
        out << "<td></td>";
        continue;
      }
      bool moving = m->verdict == "growing" || m->verdict == "plateau" || m->verdict == "transient";
      out << absl::StrFormat("<td class=\"num\" data-part=\"%s\">%s<br><span class=\"verdict v-%s\">%s</span></td>", part,
                             esc(human_bytes(m->last_bytes)), esc(moving ? m->verdict : "stable"),
                             esc(m->verdict == "growing" ? "+" + human_rate(m->growth_bytes_per_s)
                                 : moving                ? m->verdict
                                 : m->verdict == "insufficient" && m->growth_low > 0
                                     ? "+" + human_rate(m->growth_bytes_per_s) + " (unsure)"
                                     : "flat"));
    }
    out << "</tr>\n";
    for (const auto& f : p.findings) out << "<tr class=\"finding\"><td colspan=\"8\">&rarr; " << esc(f) << "</td></tr>\n";
  }
  if (any)
    out << "</tbody>\n</table>\n<p class=\"note\">Resident memory as the kernel counts it, and its parts: what the "
           "shim tracked through malloc and mmap (estimates from samples), the rest of the anonymous memory "
           "(allocator retention, fragmentation, stacks), file-backed and shared memory, and leakwatch's own tables.</p>\n";
}

}  // namespace

void html(const Report& r, const HtmlOptions& o, std::ostream& out) {
  size_t dumps = 0;
  for (const auto& p : r.processes) dumps += p.dumps;
  uint64_t sample_bytes = r.processes.empty() ? 0 : r.processes.front().sample_bytes;
  size_t growing = std::count_if(r.sites.begin(), r.sites.end(), [](const Site& s) { return s.verdict == "growing"; });
  std::string title = "leakwatch report";
  if (!r.subject.empty()) absl::StrAppend(&title, ": ", base_name(r.subject));

  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>" << esc(title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  out << "<h1>" << esc(title) << "</h1>\n";
  out << absl::StrFormat("<p class=\"summary\"><b>%d</b> process%s, <b>%d</b> dumps over <b>%s</b>, sampling every %s. ",
                         r.processes.size(), r.processes.size() == 1 ? "" : "es", dumps, human_duration(r.duration_s),
                         sample_bytes <= 1 ? std::string("allocation") : human_bytes(static_cast<double>(sample_bytes)));
  out << (growing ? absl::StrFormat("<b class=\"v-growing\">%d growing site%s</b>.", growing, growing == 1 ? "" : "s")
                  : std::string("<b>No growing sites.</b>"))
      << "</p>\n";
  out << "<p class=\"summary\">Detection floor: "
      << (std::isfinite(r.detection_floor_bytes_per_s) && r.detection_floor_bytes_per_s > 0
              ? esc(human_rate(r.detection_floor_bytes_per_s)) + " (slower leaks could go unseen in a run this short)"
              : std::string("n/a (need 3+ dumps)"))
      << "</p>\n";
  for (size_t i = 0; i < r.processes.size() && i < 10; ++i) {
    const auto& p = r.processes[i];
    out << absl::StrFormat("<p class=\"note\">pid %d <code>%s</code> on %s%s: %d dumps over %s, %s</p>\n", p.id.pid,
                           esc(base_name(p.id.exe)), esc(p.id.hostname),
                           p.id.container_id.empty() ? "" : esc(" (container " + p.id.container_id.substr(0, 12) + ")"), p.dumps,
                           human_duration(p.duration_s),
                           p.final_dump ? "exited normally" : "no final dump: killed, or still running");
  }
  if (r.processes.size() > 10) out << absl::StrFormat("<p class=\"note\">... and %d more processes</p>\n", r.processes.size() - 10);
  memory(r, out);

  // Chart: the first sites (report order) that have a series to draw.
  std::vector<size_t> charted;
  for (size_t i = 0; i < r.sites.size() && charted.size() < o.chart_sites; ++i) {
    bool any = false;
    for (const auto& ps : r.sites[i].series) any = any || !ps.points.empty();
    if (any) charted.push_back(i);
  }
  out << "<h2>Live bytes over time, top sites</h2>\n";
  if (charted.empty()) {
    out << "<p class=\"note\">No series to draw (the report was built without them).</p>\n";
  } else {
    out << "<div class=\"chart-wrap\">\n";
    chart(r, charted, out);
    out << "<div class=\"legend\">\n";
    for (size_t k = 0; k < charted.size(); ++k) {
      const Site& s = r.sites[charted[k]];
      const SiteFrame* f = own_frame(s);
      out << absl::StrFormat("<span data-rank=\"%d\"><i class=\"swatch\" style=\"background:%s\"></i>#%d <code>%s</code> %s</span>\n",
                             charted[k] + 1, kPalette[k % 8], charted[k] + 1, esc(f ? f->function : "?"),
                             esc(human_rate(s.growth_bytes_per_s)));
    }
    out << "</div>\n<p class=\"note\">One line per site and process; time is since each process started.</p>\n</div>\n";
  }

  // The ranked table.
  out << "<h2>Sites</h2>\n<table class=\"sites\">\n<thead><tr><th>#</th><th>verdict</th><th>growth</th><th>live</th>"
         "<th>confidence</th><th>procs</th><th>site (allocating frame first)</th></tr></thead>\n<tbody>\n";
  size_t rows = 0;
  for (size_t i = 0; i < r.sites.size(); ++i) {
    const Site& s = r.sites[i];
    if (s.verdict != "growing" && rows >= o.max_rows) break;
    ++rows;
    auto c = std::find(charted.begin(), charted.end(), i);
    std::string swatch = c == charted.end() ? "" : absl::StrFormat("<i class=\"swatch\" style=\"background:%s\"></i>",
                                                                    kPalette[(c - charted.begin()) % 8]);
    const SiteFrame* f = own_frame(s);
    out << absl::StrFormat("<tr class=\"site\" data-rank=\"%d\" data-site=\"%s\"><td class=\"num\">%s%d</td><td class=\"verdict v-%s\">%s</td>"
                           "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%.1f%%</td><td class=\"num\">%d</td><td>%s",
                           i + 1, site_id(s), swatch, i + 1, esc(s.verdict), esc(s.verdict), esc(human_rate(finite(s.growth_bytes_per_s))),
                           esc(human_bytes(s.live_bytes)), 100 * finite(s.confidence), s.processes,
                           f ? frame_html(*f) : std::string("?"));
    if (s.frames.size() > 1) {
      out << absl::StrFormat("<details><summary>stack, %d frames (site %s)</summary><ol>", s.frames.size(), site_id(s));
      for (const FrameRef& fr : s.frames) out << "<li>" << frame_html(*fr) << "</li>";
      out << "</ol></details>";
    }
    out << "</td></tr>\n";
  }
  out << "</tbody>\n</table>\n";
  if (rows < r.sites.size())
    out << absl::StrFormat("<p class=\"note\">... %d more sites (use --format json for all)</p>\n", r.sites.size() - rows);

  // Flame graph of growth: root at the top, width = growth rate.
  out << "<h2>Where the growth comes from</h2>\n";
  FlameNode root;
  root.name = "all growth";
  for (const auto& s : r.sites) {
    double w = finite(s.growth_bytes_per_s);
    if (w <= 0) continue;
    root.weight += w;
    FlameNode* n = &root;
    for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
      auto& child = n->children[(*it)->function];
      if (!child) child = std::make_unique<FlameNode>(), child->name = (*it)->function;
      child->weight += w;
      n = child.get();
    }
  }
  if (root.weight <= 0) {
    out << "<p class=\"note\">No site grew.</p>\n";
  } else {
    const double W = 1100;
    double scale = W / root.weight;
    int depth = flame_depth(root, scale);
    out << absl::StrFormat("<svg class=\"flame\" data-width=\"%.0f\" viewBox=\"0 0 %.0f %d\" role=\"img\" aria-label=\"flame graph of growth\">\n",
                           W, W, depth * 18);
    size_t budget = 5000;
    flame_layout(root, 0, 0, scale, W, &budget, out);
    out << "</svg>\n<p class=\"note\">Sites with a positive growth rate, weighted by it; the caller is above its "
           "callees. Hover for the rate, click a frame to zoom, click the top bar to zoom out.</p>\n";
  }

  if (!r.warnings.empty()) {
    out << "<h2>Warnings</h2>\n";
    for (size_t i = 0; i < r.warnings.size() && i < 50; ++i) out << "<p class=\"warn\">" << esc(r.warnings[i]) << "</p>\n";
    if (r.warnings.size() > 50) out << absl::StrFormat("<p class=\"warn\">... and %d more</p>\n", r.warnings.size() - 50);
  }
  out << "<script>" << kScript << "</script>\n</body>\n</html>\n";
}

}  // namespace leakwatch::render
