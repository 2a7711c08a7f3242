// Renderers: one file each, all reading the same Report model.
//
// Thread-safety: pure functions writing to the given stream.
#pragma once

#include <ostream>
#include <string>

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
// `leakwatch inspect`: a person-readable view of one dump.
void inspect(const load::Dump& d, std::ostream& out);

// Shared formatting.
std::string human_bytes(double bytes);
std::string human_rate(double bytes_per_s);
std::string human_duration(double seconds);
std::string frame_label(const SiteFrame& f);  // "func file.cpp:12" / "func (module)"

}  // namespace leakwatch::render
