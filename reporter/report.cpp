#include "reporter/report.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <cmath>
#include <unordered_map>

#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "reporter/analyze/growth.h"
#include "reporter/import/heap_profile.h"
#include "reporter/load/dump_reader.h"
#include "reporter/merge/timeline.h"
#include "reporter/symbolize/site_symbols.h"

namespace leakwatch {

namespace {

size_t worker_threads() { return std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8); }

// Runs fn(0..n-1) on up to worker_threads() threads.
template <typename Fn>
void parallel_for(size_t n, Fn fn, size_t min_parallel = 64) {
  size_t threads = worker_threads();
  if (n < min_parallel || threads == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

// The final dump is written after the program's static destructors ran:
// it shows teardown, not the steady state. With enough periodic dumps it
// is left out of the trend and of "live at the last dump".
size_t dumps_in_trend(const merge::ProcessTimeline& p) {
  size_t nd = p.dumps.size();
  return nd >= 4 && p.dumps.back().final_dump ? nd - 1 : nd;
}

}  // namespace

absl::StatusOr<Report> build_report(const ReportOptions& opt) {
  Report report;
  auto files = load::list_dump_files(opt.inputs);
  if (!files.ok()) return files.status();
  // jemalloc and gperftools heap profiles go through reporter/import/.
  std::vector<std::string> heap_files = import::take_heap_profiles(opt.inputs, &*files);
  if (files->empty() && heap_files.empty())
    return absl::NotFoundError(absl::StrCat("no dump files (*.lwdump, or jemalloc/gperftools *.heap) in ",
                                            absl::StrJoin(opt.inputs, ", ")));
  report.files_seen = files->size() + heap_files.size();

  // Files are read and checked in parallel, two per thread at a time (a
  // parsed dump can take a few hundred MB at the format's limits), and
  // merged in order on this thread.
  merge::TimelineBuilder builder;
  const size_t batch = 2 * worker_threads();
  for (size_t at = 0; at < files->size(); at += batch) {
    size_t n = std::min(batch, files->size() - at);
    std::vector<absl::StatusOr<load::Dump>> loaded(n, absl::UnknownError("not read"));
    parallel_for(n, [&](size_t i) { loaded[i] = load::read_dump((*files)[at + i]); }, 2);
    for (auto& d : loaded) {
      if (!d.ok()) {
        report.warnings.push_back(absl::StrCat("skipping ", d.status().message()));
        continue;
      }
      builder.add(*d);
      ++report.dumps_read;
    }
  }
  import::ParseOptions import_options;
  import_options.root = opt.symbols.root;
  import::import_heap_profiles(heap_files, import_options, [&](const load::Dump& d) {
    builder.add(d);
    ++report.dumps_read;
  }, &report.warnings);
  if (report.dumps_read == 0)
    return absl::DataLossError(absl::StrCat("none of the ", report.files_seen, " dump files could be read (",
                                            report.warnings.empty() ? "" : report.warnings.front(), ")"));
  merge::Timeline t = builder.finish();
  if (t.sites_folded)
    report.warnings.push_back(absl::StrCat("more than ", merge::Timeline::kMaxSites, " distinct call stacks: ",
                                           t.sites_folded, " more stack records were counted as [other]"));
  {
    std::unordered_map<std::string, bool> seen;
    for (const auto& m : t.modules)
      if (!m.path.empty() && seen.try_emplace(m.path, true).second) report.modules.push_back({m.path, m.build_id});
  }

  // Processes.
  double max_duration = 0;
  size_t max_dumps = 0;
  uint64_t sample_bytes = 0;
  for (const auto& p : t.processes) {
    ProcessInfo pi;
    pi.pid = p.pid;
    pi.instance = p.instance;
    pi.executable = p.exe;
    pi.cmdline = p.cmdline;
    pi.host = p.hostname;
    pi.container = p.container_id;
    pi.start_wall_ns = p.start_wall_ns;
    pi.dumps = p.dumps.size();
    pi.first_dump_wall_ns = p.dumps.front().wall_ns;
    pi.last_dump_wall_ns = p.dumps.back().wall_ns;
    pi.duration_s = p.dumps.back().t_s;
    pi.sample_bytes = p.dumps.back().sample_bytes;
    pi.final_dump = p.dumps.back().final_dump;
    pi.dropped_samples = p.dumps.back().dropped_samples;
    for (const auto& v : p.values[dumps_in_trend(p) - 1]) pi.live_bytes += v.live_bytes;
    if (pi.dropped_samples)
      report.warnings.push_back(absl::StrCat("process ", pi.pid, " (", pi.executable, ") dropped ", pi.dropped_samples,
                                             " samples: its sample table was full, estimates are low"));
    if (pi.duration_s > max_duration || (pi.duration_s == max_duration && pi.dumps > max_dumps)) {
      max_duration = pi.duration_s;
      max_dumps = pi.dumps;
      sample_bytes = pi.sample_bytes;
    }
    report.processes.push_back(std::move(pi));
  }
  report.duration_s = max_duration;
  report.detection_floor_bytes_per_s = analyze::detection_floor_bytes_per_s(
      static_cast<double>(sample_bytes), max_duration, max_dumps);

  // Symbolize raw sites; sites whose readable frames are the same merge.
  symbolize::SiteSymbolizer sym(opt.symbols);
  std::vector<uint32_t> display_of(t.sites.size());
  std::vector<const std::vector<uint32_t>*> display_frames;  // keys of by_frames (node map: stable)
  absl::node_hash_map<std::vector<uint32_t>, uint32_t> by_frames;
  for (uint32_t s = 0; s < t.sites.size(); ++s) {
    auto [it, fresh] = by_frames.try_emplace(sym.site(t, s), static_cast<uint32_t>(display_frames.size()));
    if (fresh) display_frames.push_back(&it->first);
    display_of[s] = it->second;
  }
  for (const auto& m : sym.missing_modules())
    report.warnings.push_back(absl::StrCat("binary not found for ", m, ": names come from the dump, no file:line"));

  // Series per (display site, process), then verdicts.
  size_t nsites = display_frames.size();
  std::vector<std::vector<analyze::GrowthResult>> per_site_results(nsites);
  std::vector<Site> sites(nsites);
  for (size_t pi = 0; pi < t.processes.size(); ++pi) {
    const auto& p = t.processes[pi];
    size_t nd = dumps_in_trend(p);
    // Dense [site][dump] only for sites this process has.
    std::unordered_map<uint32_t, std::vector<analyze::Point>> series;
    for (size_t di = 0; di < nd; ++di) {
      for (const auto& v : p.values[di]) {
        uint32_t ds = display_of[v.site];
        auto [it, fresh] = series.try_emplace(ds);
        if (fresh) {
          it->second.resize(nd);
          for (size_t k = 0; k < nd; ++k) it->second[k] = analyze::Point{p.dumps[k].t_s, 0, 0, -1};
        }
        analyze::Point& pt = it->second[di];
        pt.live_bytes += v.live_bytes;
        pt.live_samples += v.live_samples;
        pt.alloc_bytes = (pt.alloc_bytes < 0 ? 0 : pt.alloc_bytes) + v.alloc_bytes;
      }
    }
    std::vector<std::pair<uint32_t, std::vector<analyze::Point>>> items;
    items.reserve(series.size());
    for (auto& kv : series) items.emplace_back(kv.first, std::move(kv.second));
    series.clear();
    // Each series is analysed on its own: spread them over the cores.
    std::vector<analyze::GrowthResult> results(items.size());
    analyze::SeriesOptions so{static_cast<double>(p.dumps.back().sample_bytes)};
    parallel_for(items.size(), [&](size_t i) {
      auto& pts = items[i].second;
      // Cumulative allocation is only written while a stack is active:
      // carry it forward through dumps that do not mention the site.
      double last_alloc = 0;
      for (auto& pt : pts) {
        if (pt.alloc_bytes < 0) pt.alloc_bytes = last_alloc;
        last_alloc = pt.alloc_bytes = std::max(pt.alloc_bytes, last_alloc);
      }
      results[i] = analyze::analyze_series(pts, so);
    });
    std::unordered_map<uint32_t, double> live_count;
    for (const auto& v : p.values[nd - 1]) live_count[display_of[v.site]] += v.live_count;
    for (size_t i = 0; i < items.size(); ++i) {
      uint32_t ds = items[i].first;
      const auto& pts = items[i].second;
      per_site_results[ds].push_back(results[i]);
      Site& s = sites[ds];
      s.live_bytes += pts.back().live_bytes;
      s.live_samples += static_cast<uint64_t>(pts.back().live_samples);
      s.alloc_bytes += pts.back().alloc_bytes;
      s.processes += 1;
      if (auto it = live_count.find(ds); it != live_count.end()) s.live_count += it->second;
      if (opt.keep_series) {
        SiteProcessSeries sps{pi, {}};
        sps.points.reserve(pts.size());
        for (const auto& pt : pts) sps.points.push_back({pt.t_s, pt.live_bytes});
        s.series.push_back(std::move(sps));
      }
    }
  }
  for (size_t ds = 0; ds < nsites; ++ds) {
    if (per_site_results[ds].empty()) continue;
    analyze::GrowthResult r = analyze::combine(per_site_results[ds]);
    Site& s = sites[ds];
    s.verdict = analyze::verdict_name(r.verdict);
    s.growth_bytes_per_s = r.growth_bytes_per_s;
    s.growth_low = r.slope_low;
    s.growth_high = r.slope_high;
    s.confidence = r.confidence;
    s.frames.reserve(display_frames[ds]->size());
    for (uint32_t id : *display_frames[ds]) s.frames.push_back(sym.pooled(id));
    report.sites.push_back(std::move(s));
  }
  std::stable_sort(report.sites.begin(), report.sites.end(), [](const Site& a, const Site& b) {
    bool ga = a.verdict == "growing", gb = b.verdict == "growing";
    if (ga != gb) return ga;
    if (a.growth_bytes_per_s != b.growth_bytes_per_s) return a.growth_bytes_per_s > b.growth_bytes_per_s;
    return a.live_bytes > b.live_bytes;
  });
  return report;
}

}  // namespace leakwatch
