#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reporter/render/render.h"

namespace leakwatch::render {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = std::fabs(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  if (b < 0) v = -v;
  if (u == 0) return absl::StrFormat("%.0f %s", v, units[u]);
  if (std::fabs(v) < 10) return absl::StrFormat("%.2f %s", v, units[u]);
  if (std::fabs(v) < 100) return absl::StrFormat("%.1f %s", v, units[u]);
  return absl::StrFormat("%.0f %s", v, units[u]);
}

std::string human_rate(double r) { return human_bytes(r) + "/s"; }

std::string human_duration(double s) {
  if (s < 120) return absl::StrFormat("%.1fs", s);
  if (s < 7200) return absl::StrFormat("%.0fm%02.0fs", std::floor(s / 60), std::fmod(s, 60));
  if (s < 172800) return absl::StrFormat("%.0fh%02.0fm", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
  return absl::StrFormat("%.1fd", s / 86400);
}

std::string frame_label(const SiteFrame& f) {
  std::string out = f.function;
  if (!f.file.empty()) {
    auto slash = f.file.rfind('/');
    absl::StrAppend(&out, "  ", slash == std::string::npos ? f.file : f.file.substr(slash + 1));
    if (f.line > 0) absl::StrAppend(&out, ":", f.line);
  } else if (!f.module.empty()) {
    auto slash = f.module.rfind('/');
    absl::StrAppend(&out, "  (", slash == std::string::npos ? f.module : f.module.substr(slash + 1), ")");
  }
  if (f.inlined) absl::StrAppend(&out, " [inlined]");
  return out;
}

std::string hex_id(uint64_t v) { return absl::StrFormat("%016x", v); }

}  // namespace leakwatch::render
