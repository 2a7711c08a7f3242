// Renderers: one file each, all reading the same Report model.
//
// Thread-safety: pure functions writing to the given stream.
#pragma once

#include <ostream>
#include <string>

#include "reporter/diff.h"
#include "reporter/load/dump_reader.h"
#include "reporter/model.h"

namespace leakwatch::render {

struct TextOptions {
  bool color = false;     // ANSI colours (on a tty)
  size_t max_sites = 20;  // growing sites are always all shown
  size_t max_frames = 5;  // frames shown per site
};
void text(const Report& r, const TextOptions& o, std::ostream& out);
void json(const Report& r, std::ostream& out);
// flamegraph.pl / speedscope "folded" stacks, root first, weighted by
// growth in bytes/s (rounded; sites that do not grow are left out).
void folded(const Report& r, std::ostream& out);
// Prometheus text exposition (node_exporter textfile collector): live bytes
// and growth rate of the top `top` sites, one labelled series each, plus
// one "other" series for the rest, so label cardinality stays bounded.
struct PromOptions {
  size_t top = 20;
};
void prom(const Report& r, const PromOptions& o, std::ostream& out);
// pprof: a gzip-compressed perftools.profiles.Profile (render/profile.proto)
// with sample types inuse_space, inuse_objects, growth_space, alloc_space.
// Binary: false if encoding or writing failed.
bool pprof(const Report& r, std::ostream& out);
// What a site gained between each process's first and last dump (from its
// series), summed over processes; 0 if it shrank or has no series.
double site_growth_bytes(const Site& s);
// A self-contained HTML page (inline CSS and JS, nothing fetched): the
// ranked table, a chart of live bytes over time for the top sites (from
// their series) and a flame graph of growth, root first.
struct HtmlOptions {
  size_t chart_sites = 8;  // sites drawn in the chart
  size_t max_rows = 500;   // table rows (growing sites are always all shown)
};
void html(const Report& r, const HtmlOptions& o, std::ostream& out);
// The frame a person recognises a site by: the first one outside the C++
// standard library (std::vector growth is "where the vector grew").
const SiteFrame* own_frame(const Site& s);
// A stable id for a site across reports: a hash of its frames (16 hex digits).
std::string site_id(const Site& s);
// `leakwatch diff`: the header (which dumps, how far apart, totals), then
// the changed sites, beyond-noise ones first.
void diff_text(const Diff& d, size_t top, std::ostream& out);
void diff_json(const Diff& d, std::ostream& out);
// `leakwatch inspect`: a person-readable view of one dump.
void inspect(const load::Dump& d, std::ostream& out);

// What the reporter says it is: in --version, and in JSON with the schema's
// version (bumped when a field changes meaning or goes away).
inline constexpr const char kToolVersion[] = "leakwatch 0.2.0";
inline constexpr int kJsonSchemaVersion = 3;  // 3: processes[].incarnation from 1

// A 64-bit id as 16 hex digits (as in dump file names): exact in every
// JSON reader, which a 64-bit decimal is not.
std::string hex_id(uint64_t v);

// Shared formatting.
std::string human_bytes(double bytes);
std::string human_rate(double bytes_per_s);
std::string human_duration(double seconds);
std::string frame_label(const SiteFrame& f);  // "func file.cpp:12" / "func (module)"

}  // namespace leakwatch::render
