#include <cmath>
#include <nlohmann/json.hpp>

#include "reporter/render/render.h"

namespace leakwatch::render {

namespace {
double finite(double v) { return std::isfinite(v) ? v : 0; }
}  // namespace

// Streams one site at a time: a report with 10,000 sites and long series
// never exists as one JSON tree in memory.
void json(const Report& r, std::ostream& out) {
  using nlohmann::json;
  out << "{\"sites\": [";
  bool first_site = true;
  for (const auto& s : r.sites) {
    json frames = json::array();
    for (const FrameRef& f : s.frames)
      frames.push_back({{"function", f->function},
                        {"module", f->module},
                        {"file", f->file.empty() ? json(nullptr) : json(f->file)},
                        {"line", f->line > 0 ? json(f->line) : json(nullptr)},
                        {"inlined", f->inlined}});
    json series = json::array();
    for (const auto& ps : s.series) {
      json pts = json::array();
      for (const auto& p : ps.points) pts.push_back({p.t_s, p.live_bytes});
      series.push_back({{"process", ps.process}, {"points", pts}});
    }
    json site = {{"id", site_id(s)},
                     {"verdict", s.verdict},
                     {"growth_bytes_per_s", finite(s.growth_bytes_per_s)},
                     {"fleet_growth_bytes_per_s", finite(s.fleet_growth_bytes_per_s)},
                     {"concurrent_processes", s.concurrent},
                     {"growth_interval_bytes_per_s", {finite(s.growth_low), finite(s.growth_high)}},
                     {"live_bytes", s.live_bytes},
                     {"live_count", s.live_count},
                     {"alloc_bytes", s.alloc_bytes},
                     {"live_samples", s.live_samples},
                     {"confidence", s.confidence},
                     {"processes", s.processes},
                     {"frames", frames},
                     {"series", series}};
    out << (first_site ? "\n " : ",\n ") << site.dump(-1, ' ', false, json::error_handler_t::replace);
    first_site = false;
  }
  out << "\n],\n";
  auto memory_of = [](const ProcessInfo& p) {
    json parts = json::object();
    for (const auto& m : p.memory)
      parts[m.part] = {{"verdict", m.verdict},
                       {"growth_bytes_per_s", finite(m.growth_bytes_per_s)},
                       {"growth_interval_bytes_per_s", {finite(m.growth_low), finite(m.growth_high)}},
                       {"confidence", m.confidence},
                       {"reason", m.reason},
                       {"bytes", m.last_bytes}};
    json series = json::array();
    for (const auto& s : p.memory_series)
      series.push_back({s.t_s, s.rss, s.rss_anon, s.rss_file, s.rss_shmem, s.malloc_live, s.mmap_live});
    return json{{"parts", parts},
                {"series_columns", {"t_s", "rss", "rss_anon", "rss_file", "rss_shmem", "malloc", "mmap"}},
                {"series", series},
                {"findings", p.findings}};
  };
  json procs = json::array();
  for (const auto& p : r.processes)
    procs.push_back({{"pid", p.id.pid},
                     {"runtime", p.runtime},
                     {"memory", p.memory.empty() ? json(nullptr) : memory_of(p)},
                     {"ppid", p.id.ppid},
                     {"instance", hex_id(p.id.instance)},
                     {"executable", p.id.exe},
                     {"build_id", p.build_id},
                     {"boot_id", p.id.boot_id},
                     {"service", p.service},
                     {"lane", p.lane},
                     {"incarnation", p.incarnation + 1},  // 1 for the first, as the text says
                     {"dumps_written", p.dumps_written},
                     {"retention_level", p.retention_level},
                     {"last_dump_reason", p.last_reason},
                     {"cmdline", p.id.cmdline},
                     {"host", p.id.hostname},
                     {"container", p.id.container_id.empty() ? json(nullptr) : json(p.id.container_id)},
                     {"start_time_ns", p.id.start_wall_ns},
                     {"dumps", p.dumps},
                     {"first_dump_time_ns", p.first_dump_wall_ns},
                     {"last_dump_time_ns", p.last_dump_wall_ns},
                     {"duration_s", p.duration_s},
                     {"sample_bytes", p.sample_bytes},
                     {"exited_normally", p.final_dump},
                     {"dropped_samples", p.dropped_samples},
                     {"live_bytes", p.live_bytes}});
  json services = json::array();
  for (const auto& sv : r.services)
    services.push_back({{"executable", sv.executable},
                        {"build_id", sv.build_id},
                        {"processes", sv.processes},
                        {"at_once", sv.lanes},
                        {"incarnations", sv.incarnations}});
  json doc = {{"tool_version", kToolVersion},
              {"schema_version", kJsonSchemaVersion},
              {"subject", r.subject},
              {"sites_omitted", r.sites_omitted},
              {"start_time_ns", r.start_wall_ns},
              {"end_time_ns", r.end_wall_ns},
              {"services", services},
              {"detection_floor_bytes_per_s",
               std::isfinite(r.detection_floor_bytes_per_s) ? json(r.detection_floor_bytes_per_s) : json(nullptr)},
              {"duration_s", r.duration_s},
              {"processes", procs},
              {"files_seen", r.files_seen},
              {"dumps_read", r.dumps_read},
              {"warnings", r.warnings}};
  // The rest of the top-level object, without its opening brace.
  std::string rest = doc.dump(1, ' ', false, json::error_handler_t::replace);  // names from a dump need not be UTF-8
  out << rest.substr(rest.find('{') + 1) << "\n";
}

}  // namespace leakwatch::render
