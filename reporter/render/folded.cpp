#include <cmath>

#include "reporter/render/render.h"

namespace leakwatch::render {

void folded(const Report& r, std::ostream& out) {
  for (const auto& s : r.sites) {
    long long w = std::llround(s.growth_bytes_per_s);
    if (w <= 0) continue;
    std::string line;
    // Root first; ';' and newlines would break the format.
    for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
      std::string name = (*it)->function;
      for (char& c : name)
        if (c == ';' || c == '\n') c = ',';
      if (!line.empty()) line += ';';
      line += name;
    }
    out << line << ' ' << w << '\n';
  }
}

}  // namespace leakwatch::render
