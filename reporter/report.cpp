#include "reporter/report.h"

#include <algorithm>
#include <limits>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fnmatch.h>
#include <map>
#include <thread>
#include <unordered_map>

#include "absl/container/node_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "reporter/analyze/growth.h"
#include "reporter/analyze/memory.h"
#include "reporter/import/heap_profile.h"
#include "reporter/merge/timeline.h"
#include "reporter/symbolize/site_symbols.h"

namespace leakwatch {

bool Selection::selects_all() const {
  return pids.empty() && instances.empty() && hosts.empty() && containers.empty() && exes.empty() &&
         since_wall_ns == 0 && until_wall_ns == UINT64_MAX;
}

bool Selection::wants(const load::Dump& d) const {
  auto any = [](const auto& list, auto pred) {
    return list.empty() || std::any_of(list.begin(), list.end(), pred);
  };
  const ProcessIdentity& id = d.id;
  std::string base = id.exe.substr(id.exe.rfind('/') + 1);
  return any(pids, [&](uint64_t p) { return p == id.pid; }) &&
         any(instances, [&](uint64_t i) { return i == id.instance; }) &&
         any(hosts, [&](const std::string& h) { return h == id.hostname; }) &&
         any(containers, [&](const std::string& c) { return !id.container_id.empty() && absl::StartsWith(id.container_id, c); }) &&
         any(exes, [&](const std::string& g) {
           return fnmatch(g.c_str(), id.exe.c_str(), 0) == 0 || fnmatch(g.c_str(), base.c_str(), 0) == 0;
         }) &&
         d.wall_ns >= since_wall_ns && d.wall_ns <= until_wall_ns;
}

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

// Step 1: every dump file (and imported heap profile) the selection wants,
// read in parallel and merged in order.
absl::StatusOr<merge::Timeline> load_timeline(const ReportOptions& opt, Report* report) {
  auto files = load::list_dump_files(opt.inputs);
  if (!files.ok()) return files.status();
  // jemalloc and gperftools heap profiles go through reporter/import/.
  std::vector<std::string> heap_files = import::take_heap_profiles(opt.inputs, &*files);
  if (files->empty() && heap_files.empty())
    return absl::NotFoundError(absl::StrCat("no dump files (*.lwdump, or jemalloc/gperftools *.heap) in ",
                                            absl::StrJoin(opt.inputs, ", ")));
  report->files_seen = files->size() + heap_files.size();

  // Files are read and checked in parallel, two per thread at a time (a
  // parsed dump can take a few hundred MB at the format's limits), and
  // merged in order on this thread.
  merge::TimelineBuilder builder;
  size_t selected_out = 0;
  const size_t batch = 2 * worker_threads();
  for (size_t at = 0; at < files->size(); at += batch) {
    size_t n = std::min(batch, files->size() - at);
    std::vector<absl::StatusOr<load::Dump>> loaded(n, absl::UnknownError("not read"));
    parallel_for(n, [&](size_t i) { loaded[i] = load::read_dump((*files)[at + i]); }, 2);
    for (size_t i = 0; i < n; ++i) {
      auto& d = loaded[i];
      if (!d.ok()) {
        // Gone since the listing: a writer's retention or the directory
        // budget removed it (shim/dump/dir_budget.h). Not a problem.
        std::error_code ec;
        if (d.status().code() == absl::StatusCode::kNotFound && !std::filesystem::exists((*files)[at + i], ec) && !ec)
          continue;
        report->warnings.push_back(absl::StrCat("skipping ", d.status().message()));
        continue;
      }
      if (!opt.select.wants(*d)) {
        ++selected_out;
        continue;
      }
      builder.add(*d);
      ++report->dumps_read;
    }
  }
  import::ParseOptions import_options;
  import_options.root = opt.symbols.root;
  import::import_heap_profiles(heap_files, import_options, [&](const load::Dump& d) {
    if (!opt.select.wants(d)) return void(++selected_out);
    builder.add(d);
    ++report->dumps_read;
  }, &report->warnings);
  if (report->dumps_read == 0 && selected_out > 0)
    return absl::NotFoundError(absl::StrCat("none of the ", selected_out,
                                            " dumps read matches the selection (--pid, --instance, --host, "
                                            "--container, --exe, --since, --until)"));
  if (report->dumps_read == 0)
    return absl::DataLossError(absl::StrCat("none of the ", report->files_seen, " dump files could be read (",
                                            report->warnings.empty() ? "" : report->warnings.front(), ")"));
  merge::Timeline t = builder.finish();
  if (t.sites_folded)
    report->warnings.push_back(absl::StrCat("more than ", merge::Timeline::kMaxSites, " distinct call stacks: ",
                                            t.sites_folded, " more stack records were counted as [other]"));
  std::unordered_map<std::string, bool> seen;
  for (const auto& m : t.modules)
    if (!m.path.empty() && seen.try_emplace(m.path, true).second) report->modules.push_back({m.path, m.build_id});
  return t;
}

ProcessInfo describe_process(const merge::ProcessTimeline& p) {
  ProcessInfo pi;
  pi.id = p.id;
  pi.build_id = p.exe_build_id;
  pi.dumps = p.dumps.size();
  pi.first_dump_wall_ns = p.dumps.front().wall_ns;
  pi.last_dump_wall_ns = p.dumps.back().wall_ns;
  const double before_first_ns = std::max(0.0, p.dumps.front().t_s) * 1e9;
  pi.started_wall_ns = before_first_ns < static_cast<double>(pi.first_dump_wall_ns)
                           ? pi.first_dump_wall_ns - static_cast<uint64_t>(before_first_ns)
                           : pi.first_dump_wall_ns;
  pi.duration_s = p.dumps.back().t_s;
  pi.sample_bytes = p.dumps.back().sample_bytes;
  pi.final_dump = p.dumps.back().final_dump;
  pi.dropped_samples = p.dumps.back().dropped_samples;
  pi.dumps_written = p.dumps.back().seq + 1;
  pi.last_reason = p.dumps.back().reason;
  for (const auto& d : p.dumps) pi.retention_level = std::max(pi.retention_level, d.retention_level);
  for (const auto& v : p.values[dumps_in_trend(p) - 1]) pi.live_bytes += v.live_bytes;
  return pi;
}

// Services (one executable and build) and, within each, lanes: processes
// that never ran at the same time follow one another in a lane (restarts);
// processes alive at once take different lanes (replicas, fork children).
// A process is alive from its start, not from its first dump: a master
// that dumps only at exit ran beside its workers, not after them.
void assign_services(Report* r) {
  std::map<std::pair<std::string, std::string>, size_t> service_of;
  for (size_t i = 0; i < r->processes.size(); ++i) {
    ProcessInfo& p = r->processes[i];
    auto [it, fresh] = service_of.try_emplace({p.id.exe, p.build_id}, r->services.size());
    if (fresh) r->services.push_back(ServiceInfo{p.id.exe, p.build_id, {}, 0, 0});
    p.service = it->second;
    r->services[it->second].processes.push_back(i);
  }
  for (ServiceInfo& s : r->services) {
    std::stable_sort(s.processes.begin(), s.processes.end(), [&](size_t a, size_t b) {
      return r->processes[a].started_wall_ns < r->processes[b].started_wall_ns;
    });
    std::vector<uint64_t> lane_end;   // last dump of each lane's latest process
    std::vector<size_t> lane_count;
    for (size_t pi : s.processes) {
      ProcessInfo& p = r->processes[pi];
      // The lane whose latest process ended last before this one began.
      size_t best = lane_end.size();
      for (size_t l = 0; l < lane_end.size(); ++l)
        if (lane_end[l] < p.started_wall_ns && (best == lane_end.size() || lane_end[l] > lane_end[best])) best = l;
      if (best == lane_end.size()) lane_end.push_back(0), lane_count.push_back(0);
      lane_end[best] = p.last_dump_wall_ns;
      p.lane = best;
      p.incarnation = lane_count[best]++;
      s.incarnations = std::max(s.incarnations, lane_count[best]);
    }
    s.lanes = lane_end.size();
  }
}

// Step 2: the processes, their services and lanes, the report's span and
// its detection floor.
void describe_processes(const merge::Timeline& t, Report* report) {
  // The floor of the process whose trend can tell the slowest leak (not
  // merely the longest-lived: a master with two dumps beside its workers).
  report->detection_floor_bytes_per_s = std::numeric_limits<double>::infinity();
  for (const auto& p : t.processes) {
    ProcessInfo pi = describe_process(p);
    if (pi.dropped_samples)
      report->warnings.push_back(absl::StrCat("process ", pi.id.pid, " (", pi.id.exe, ") dropped ", pi.dropped_samples,
                                              " samples: its sample table was full, estimates are low"));
    report->longest_process_s = std::max(report->longest_process_s, pi.duration_s);
    report->detection_floor_bytes_per_s =
        std::min(report->detection_floor_bytes_per_s,
                 analyze::detection_floor_bytes_per_s(static_cast<double>(pi.sample_bytes), pi.duration_s, pi.dumps));
    if (!report->start_wall_ns || pi.first_dump_wall_ns < report->start_wall_ns) report->start_wall_ns = pi.first_dump_wall_ns;
    report->end_wall_ns = std::max(report->end_wall_ns, pi.last_dump_wall_ns);
    report->processes.push_back(std::move(pi));
  }
  report->duration_s = static_cast<double>(report->end_wall_ns - report->start_wall_ns) / 1e9;
  assign_services(report);
  size_t most = 0;
  for (const ServiceInfo& sv : report->services) {
    size_t dumps = 0;
    for (size_t pi : sv.processes) dumps += report->processes[pi].dumps;
    if (dumps > most) most = dumps, report->subject = sv.executable;
  }
}

// Step 3: raw sites symbolized; sites whose readable frames are the same
// become one display site.
struct DisplaySites {
  std::vector<uint32_t> of_raw;                         // raw site -> display site
  std::vector<const std::vector<uint32_t>*> frames;     // display site -> frame ids (keys of `keys`)
  absl::node_hash_map<std::vector<uint32_t>, uint32_t> keys;
};

void group_sites(const merge::Timeline& t, symbolize::SiteSymbolizer& sym, DisplaySites* ds, Report* report) {
  ds->of_raw.resize(t.sites.size());
  for (uint32_t s = 0; s < t.sites.size(); ++s) {
    auto [it, fresh] = ds->keys.try_emplace(sym.site(t, s), static_cast<uint32_t>(ds->frames.size()));
    if (fresh) ds->frames.push_back(&it->first);
    ds->of_raw[s] = it->second;
  }
  for (const auto& m : sym.missing_modules())
    report->warnings.push_back(absl::StrCat("binary not found for ", m, ": names come from the dump, no file:line"));
}

// One process's series per display site, analysed.
struct ProcessSeries {
  uint32_t site;
  std::vector<analyze::Point> points;
  analyze::GrowthResult result;
  double live_count = 0;
};

std::vector<ProcessSeries> analyze_process(const merge::Timeline& t, const merge::ProcessTimeline& p, const DisplaySites& ds) {
  size_t nd = dumps_in_trend(p);
  // Dense [site][dump] only for sites this process has.
  std::unordered_map<uint32_t, size_t> index;
  std::vector<ProcessSeries> out;
  for (size_t di = 0; di < nd; ++di) {
    for (const auto& v : p.values[di]) {
      uint32_t site = ds.of_raw[v.site];
      auto [it, fresh] = index.try_emplace(site, out.size());
      if (fresh) {
        out.push_back(ProcessSeries{site, std::vector<analyze::Point>(nd), {}, 0});
        for (size_t k = 0; k < nd; ++k) out.back().points[k] = analyze::Point{p.dumps[k].t_s, 0, 0, -1};
      }
      analyze::Point& pt = out[it->second].points[di];
      pt.live_bytes += v.live_bytes;
      pt.live_samples += v.live_samples;
      pt.alloc_bytes = (pt.alloc_bytes < 0 ? 0 : pt.alloc_bytes) + v.alloc_bytes;
    }
  }
  for (const auto& v : p.values[nd - 1]) out[index[ds.of_raw[v.site]]].live_count += v.live_count;
  // Each series is analysed on its own: spread them over the cores.
  // Mappings are sampled finer than allocations: their sites' noise is smaller.
  std::vector<bool> mapped(out.size(), false);
  for (size_t di = 0; di < nd; ++di)
    for (const auto& v : p.values[di])
      if (!t.sites[v.site].empty() && t.sites[v.site][0] == merge::Timeline::kMmapFrame) mapped[index[ds.of_raw[v.site]]] = true;
  analyze::SeriesOptions so{static_cast<double>(p.dumps.back().sample_bytes)};
  analyze::SeriesOptions so_mapped{static_cast<double>(p.dumps.back().mapping_sample_bytes)};
  parallel_for(out.size(), [&](size_t i) {
    auto& pts = out[i].points;
    // Cumulative allocation is only written while a stack is active:
    // carry it forward through dumps that do not mention the site.
    double last_alloc = 0;
    for (auto& pt : pts) {
      if (pt.alloc_bytes < 0) pt.alloc_bytes = last_alloc;
      last_alloc = pt.alloc_bytes = std::max(pt.alloc_bytes, last_alloc);
    }
    out[i].result = analyze::analyze_series(pts, mapped[i] ? so_mapped : so);
  });
  return out;
}

// Step 4: every site's verdict. Per site, each lane's incarnations are
// combined (averaged: a restart measures the same leak again), then the
// lanes (summed: concurrent processes each gain memory).
void analyze_sites(const merge::Timeline& t, const DisplaySites& ds, symbolize::SiteSymbolizer& sym, bool keep_series,
                   Report* report) {
  struct Part {
    size_t incarnation;
    analyze::GrowthResult result;
    double live_bytes, live_count;
    uint64_t live_samples;
  };
  using LaneKey = std::pair<size_t, size_t>;  // (service, lane)
  std::map<LaneKey, size_t> latest;           // a lane's latest incarnation
  for (const ProcessInfo& p : report->processes) {
    size_t& l = latest[{p.service, p.lane}];
    l = std::max(l, p.incarnation);
  }
  const size_t nsites = ds.frames.size();
  std::vector<std::map<LaneKey, std::vector<Part>>> lanes(nsites);
  std::vector<Site> sites(nsites);
  for (size_t pi = 0; pi < t.processes.size(); ++pi) {
    const auto& p = t.processes[pi];
    const ProcessInfo& info = report->processes[pi];
    for (ProcessSeries& ps : analyze_process(t, p, ds)) {
      Site& s = sites[ps.site];
      const analyze::Point& last = ps.points.back();
      s.alloc_bytes += last.alloc_bytes;
      s.processes += 1;
      lanes[ps.site][{info.service, info.lane}].push_back(
          Part{info.incarnation, ps.result, last.live_bytes, ps.live_count, static_cast<uint64_t>(last.live_samples)});
      if (!keep_series) continue;
      SiteProcessSeries sps{pi, {}};
      sps.points.reserve(ps.points.size());
      for (size_t k = 0; k < ps.points.size(); ++k)
        sps.points.push_back({static_cast<double>(p.dumps[k].wall_ns - report->start_wall_ns) / 1e9, ps.points[k].live_bytes});
      s.series.push_back(std::move(sps));
    }
  }
  for (size_t d = 0; d < nsites; ++d) {
    if (lanes[d].empty()) continue;
    Site& s = sites[d];
    std::vector<analyze::GrowthResult> per_lane;
    for (auto& [key, parts] : lanes[d]) {
      std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.incarnation < b.incarnation; });
      std::vector<analyze::GrowthResult> results;
      for (const Part& part : parts) results.push_back(part.result);
      per_lane.push_back(analyze::combine_incarnations(results));
      // Live now: the lane's latest incarnation (a dead one's memory is gone).
      if (parts.back().incarnation == latest[key]) {
        s.live_bytes += parts.back().live_bytes;
        s.live_count += parts.back().live_count;
        s.live_samples += parts.back().live_samples;
      }
    }
    analyze::GrowthResult fleet = analyze::combine(per_lane);
    const double n = static_cast<double>(per_lane.size());
    s.verdict = analyze::verdict_name(fleet.verdict);
    s.concurrent = per_lane.size();
    s.fleet_growth_bytes_per_s = fleet.growth_bytes_per_s;
    s.growth_bytes_per_s = fleet.growth_bytes_per_s / n;
    s.growth_low = fleet.slope_low / n;
    s.growth_high = fleet.slope_high / n;
    s.confidence = fleet.confidence;
    s.frames.reserve(ds.frames[d]->size());
    for (uint32_t id : *ds.frames[d]) s.frames.push_back(sym.pooled(id));
    report->sites.push_back(std::move(s));
  }
  std::stable_sort(report->sites.begin(), report->sites.end(), [](const Site& a, const Site& b) {
    bool ga = a.verdict == "growing", gb = b.verdict == "growing";
    if (ga != gb) return ga;
    if (a.growth_bytes_per_s != b.growth_bytes_per_s) return a.growth_bytes_per_s > b.growth_bytes_per_s;
    return a.live_bytes > b.live_bytes;
  });
}

}  // namespace

// Step 5: all of each process's memory, its parts' trends, and what they say.
void account_memory(const merge::Timeline& t, Report* report) {
  std::vector<bool> grows(report->processes.size(), false);
  for (const Site& s : report->sites)
    if (s.verdict == "growing")
      for (const auto& ser : s.series) grows[ser.process] = true;
  for (size_t pi = 0; pi < t.processes.size(); ++pi) {
    const auto& p = t.processes[pi];
    ProcessInfo& info = report->processes[pi];
    info.runtime = p.runtime;
    std::vector<analyze::MemoryPoint> pts;
    for (size_t k = 0, nd = dumps_in_trend(p); k < nd; ++k) {
      const merge::DumpMeta& d = p.dumps[k];
      pts.push_back({d.t_s, static_cast<double>(d.memory.rss), static_cast<double>(d.memory.rss_anon),
                     static_cast<double>(d.memory.rss_file), static_cast<double>(d.memory.rss_shmem), d.malloc_live,
                     d.malloc_samples, d.mmap_live, d.mmap_samples, static_cast<double>(d.memory.shim_resident),
                     d.malloc_alloc});
      if (d.memory.rss)
        info.memory_series.push_back({static_cast<double>(d.wall_ns - report->start_wall_ns) / 1e9,
                                      static_cast<double>(d.memory.rss), static_cast<double>(d.memory.rss_anon),
                                      static_cast<double>(d.memory.rss_file), static_cast<double>(d.memory.rss_shmem),
                                      d.malloc_live, d.mmap_live});
    }
    analyze::MemoryTrends trends = analyze::analyze_memory(
        pts, static_cast<double>(info.sample_bytes),
        static_cast<double>(p.dumps.empty() ? info.sample_bytes : p.dumps.back().mapping_sample_bytes));
    if (!trends.measured) continue;
    for (int i = 0; i < static_cast<int>(analyze::MemoryPart::kCount); ++i) {
      auto part = static_cast<analyze::MemoryPart>(i);
      const analyze::MemoryTrend& mt = trends[part];
      info.memory.push_back(MemoryLine{analyze::memory_part_name(part), analyze::verdict_name(mt.result.verdict),
                                       mt.result.growth_bytes_per_s, mt.result.slope_low, mt.result.slope_high,
                                       mt.result.confidence, mt.last, mt.result.reason});
    }
    info.findings = analyze::explain_memory(trends, p.runtime, grows[pi]);
  }
}

absl::StatusOr<Report> build_report(const ReportOptions& opt) {
  Report report;
  auto timeline = load_timeline(opt, &report);
  if (!timeline.ok()) return timeline.status();
  describe_processes(*timeline, &report);
  symbolize::SiteSymbolizer sym(opt.symbols);
  DisplaySites ds;
  group_sites(*timeline, sym, &ds, &report);
  analyze_sites(*timeline, ds, sym, opt.keep_series, &report);
  account_memory(*timeline, &report);
  return report;
}

}  // namespace leakwatch
