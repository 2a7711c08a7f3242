// pprof output: a gzip-compressed perftools.profiles.Profile
// (render/profile.proto), readable by `pprof`, `go tool pprof`, speedscope,
// Pyroscope and the like.
//
// One Sample per site, values unsampled (the report's estimates):
//   inuse_space   bytes  live bytes at each process's last dump
//   inuse_objects count  live objects at the last dump
//   growth_space  bytes  what the site gained between each process's first
//                        and last dump (summed; a site that shrank is 0)
//   alloc_space   bytes  allocated over the run (cumulative)
// The names are the ones pprof's -inuse_space/-alloc_space flags and
// heap-profile viewers look for. The default view is growth_space.
//
// Frames: the report's site frames, leaf first. A frame marked inlined
// belongs to the same Location as the next non-inlined frame (its caller
// in the same code address), as extra Lines, innermost first. Locations
// carry no addresses (the report is already symbolized); each points at a
// Mapping with the module's path and build-id.
#include <cmath>
#include <map>
#include <tuple>

#include <zlib.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "render/profile.pb.h"  // generated from reporter/render/profile.proto
#include "reporter/render/render.h"

namespace leakwatch::render {

namespace {

namespace pb = perftools::profiles;

int64_t estimate(double v) { return std::isfinite(v) ? std::llround(v) : 0; }

class Builder {
 public:
  Builder() { str(""); }  // string_table[0] must be ""

  int64_t str(const std::string& s) {
    auto [it, fresh] = strings_.try_emplace(s, static_cast<int64_t>(strings_.size()));
    if (fresh) p_.add_string_table(s);
    return it->second;
  }

  uint64_t mapping(const std::string& module, const std::map<std::string, std::string>& build_ids) {
    if (module.empty()) return 0;
    auto [it, fresh] = mappings_.try_emplace(module, mappings_.size() + 1);
    if (fresh) {
      pb::Mapping* m = p_.add_mapping();
      m->set_id(it->second);
      m->set_filename(str(module));
      auto b = build_ids.find(module);
      if (b != build_ids.end() && !b->second.empty()) m->set_build_id(str(b->second));
      m->set_has_functions(true);
    }
    return it->second;
  }

  uint64_t function(const SiteFrame& f) {
    auto [it, fresh] = functions_.try_emplace({f.function, f.file}, functions_.size() + 1);
    if (fresh) {
      pb::Function* fn = p_.add_function();
      fn->set_id(it->second);
      fn->set_name(str(f.function));
      fn->set_system_name(str(f.function));
      if (!f.file.empty()) fn->set_filename(str(f.file));
    }
    return it->second;
  }

  // frames[begin, end): inlined frames, then the real one they sit in.
  uint64_t location(const std::vector<FrameRef>& frames, size_t begin, size_t end,
                    const std::map<std::string, std::string>& build_ids) {
    const SiteFrame& real = *frames[end - 1];
    uint64_t mapping_id = mapping(real.module, build_ids);
    std::vector<std::pair<uint64_t, int64_t>> lines;
    for (size_t i = begin; i < end; ++i) lines.emplace_back(function(*frames[i]), frames[i]->line);
    auto [it, fresh] = locations_.try_emplace({mapping_id, lines}, locations_.size() + 1);
    if (fresh) {
      pb::Location* loc = p_.add_location();
      loc->set_id(it->second);
      loc->set_mapping_id(mapping_id);
      for (const auto& [fid, line] : lines) {
        pb::Line* l = loc->add_line();
        l->set_function_id(fid);
        if (line > 0) l->set_line(line);
      }
      if (mapping_id) {
        pb::Mapping* m = p_.mutable_mapping(static_cast<int>(mapping_id - 1));
        for (size_t i = begin; i < end; ++i) {
          if (!frames[i]->file.empty()) m->set_has_filenames(true);
          if (frames[i]->line > 0) m->set_has_line_numbers(true);
        }
        if (end - begin > 1) m->set_has_inline_frames(true);
      }
    }
    return it->second;
  }

  pb::Profile& profile() { return p_; }

 private:
  pb::Profile p_;
  std::map<std::string, int64_t> strings_;
  std::map<std::string, uint64_t> mappings_;
  std::map<std::pair<std::string, std::string>, uint64_t> functions_;
  std::map<std::pair<uint64_t, std::vector<std::pair<uint64_t, int64_t>>>, uint64_t> locations_;
};

// gzip (RFC 1952) of `in`, written to out.
bool gzip(const std::string& in, std::ostream& out) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 16];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = deflate(&z, Z_FINISH);
    if (rc == Z_STREAM_ERROR) break;
    out.write(buf, static_cast<std::streamsize>(sizeof buf - z.avail_out));
  } while (rc != Z_STREAM_END);
  deflateEnd(&z);
  return rc == Z_STREAM_END && static_cast<bool>(out);
}

}  // namespace

double site_growth_bytes(const Site& s) {
  double g = 0;
  for (const auto& ps : s.series)
    if (!ps.points.empty()) g += ps.points.back().live_bytes - ps.points.front().live_bytes;
  return g > 0 ? g : 0;
}

bool pprof(const Report& r, std::ostream& out) {
  std::map<std::string, std::string> build_ids;
  for (const auto& m : r.modules) build_ids.emplace(m.path, m.build_id);

  Builder b;
  pb::Profile& p = b.profile();
  const char* types[][2] = {{"inuse_space", "bytes"}, {"inuse_objects", "count"}, {"growth_space", "bytes"},
                            {"alloc_space", "bytes"}};
  for (const auto& t : types) {
    pb::ValueType* vt = p.add_sample_type();
    vt->set_type(b.str(t[0]));
    vt->set_unit(b.str(t[1]));
  }
  p.set_default_sample_type(b.str("growth_space"));
  p.mutable_period_type()->set_type(b.str("space"));
  p.mutable_period_type()->set_unit(b.str("bytes"));
  uint64_t first_ns = 0, sample_bytes = 0;
  for (const auto& proc : r.processes) {
    if (!first_ns || (proc.first_dump_wall_ns && proc.first_dump_wall_ns < first_ns)) first_ns = proc.first_dump_wall_ns;
    if (!sample_bytes) sample_bytes = proc.sample_bytes;
  }
  p.set_period(static_cast<int64_t>(sample_bytes));
  p.set_time_nanos(static_cast<int64_t>(first_ns));
  p.set_duration_nanos(estimate(r.duration_s * 1e9));
  p.add_comment(b.str(absl::StrFormat("leakwatch report: %d processes, %d dumps, %s", r.processes.size(),
                                      r.dumps_read, human_duration(r.duration_s))));
  if (std::isfinite(r.detection_floor_bytes_per_s))
    p.add_comment(b.str(absl::StrCat("detection floor: ", human_rate(r.detection_floor_bytes_per_s))));
  // All of each process's memory (`pprof -comments` shows it): the samples
  // hold only what the shim tracked; these lines say how it compares with
  // resident memory, and what to do when the growth is elsewhere.
  for (size_t i = 0, shown = 0; i < r.processes.size() && shown < 10; ++i) {
    const auto& proc = r.processes[i];
    if (proc.memory.empty() || (proc.dumps < 3 && proc.findings.empty())) continue;
    ++shown;
    std::vector<std::string> parts;
    for (const auto& m : proc.memory)
      parts.push_back(absl::StrCat(m.part, " ", human_bytes(m.last_bytes),
                                   m.verdict == "growing" ? " +" + human_rate(m.growth_bytes_per_s) : std::string()));
    p.add_comment(b.str(absl::StrFormat("memory of pid %d %s: %s", proc.id.pid, proc.id.exe, absl::StrJoin(parts, ", "))));
    for (const auto& f : proc.findings) p.add_comment(b.str(absl::StrCat("  -> ", f)));
  }

  int64_t k_verdict = b.str("verdict"), k_rate = b.str("growth_rate"), k_site = b.str("site"),
          k_unit = b.str("bytes/s"), k_conf = b.str("confidence_pct"), k_pct = b.str("percent");
  for (const auto& s : r.sites) {
    pb::Sample* smp = p.add_sample();
    size_t begin = 0;
    for (size_t i = 0; i < s.frames.size(); ++i) {
      // An inlined frame continues into the next one; the last frame of a
      // site closes its location even if (oddly) marked inlined.
      if (s.frames[i]->inlined && i + 1 < s.frames.size()) continue;
      smp->add_location_id(b.location(s.frames, begin, i + 1, build_ids));
      begin = i + 1;
    }
    smp->add_value(estimate(s.live_bytes));
    smp->add_value(estimate(s.live_count));
    smp->add_value(estimate(site_growth_bytes(s)));
    smp->add_value(estimate(s.alloc_bytes));
    pb::Label* l = smp->add_label();
    l->set_key(k_verdict);
    l->set_str(b.str(s.verdict));
    l = smp->add_label();
    l->set_key(k_site);
    l->set_str(b.str(site_id(s)));
    l = smp->add_label();
    l->set_key(k_rate);
    l->set_num(estimate(s.growth_bytes_per_s));
    l->set_num_unit(k_unit);
    l = smp->add_label();
    l->set_key(k_conf);
    l->set_num(estimate(100 * s.confidence));
    l->set_num_unit(k_pct);
  }
  std::string bytes;
  if (!p.SerializeToString(&bytes)) return false;
  return gzip(bytes, out);
}

}  // namespace leakwatch::render
