// Fuzz target: the shim's configuration parser and its MATCH globs.
// Runs inside the host at start-up, before anything else, so it must be
// total: any environment yields a usable Config (values in their ranges,
// strings terminated), at most ConfigWarnings::kMax warnings, and no read
// or write out of bounds.
//
// Input layout: byte 0 is a bit mask of which variables are set; the rest
// is split at NUL bytes into the values, in the order of kVars, then one
// more part: a name to test the configured MATCH globs against (the
// executable's basename or argv[0]'s), and a last part used as raw globs.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "shim/runtime/config.h"
#include "tests/fuzz/fuzz_util.h"

using namespace leakwatch::shim;

namespace {

const char* const kVars[] = {"TMPDIR",          "LEAKWATCH_DIR",        "LEAKWATCH_SAMPLE_BYTES", "LEAKWATCH_INTERVAL",
                             "LEAKWATCH_MATCH", "LEAKWATCH_MAX_FRAMES", "LEAKWATCH_DISABLE",      "LEAKWATCH_MAX_DUMPS"};
constexpr int kNumVars = sizeof kVars / sizeof kVars[0];

// The fake environment (parse_config takes a plain function pointer).
const char* g_values[kNumVars];

const char* fake_getenv(const char* name) {
  for (int i = 0; i < kNumVars; ++i)
    if (std::strcmp(name, kVars[i]) == 0) return g_values[i];
  return nullptr;
}

void check(bool ok) {
  if (!ok) abort();
}

bool terminated(const char* s, size_t cap) { return memchr(s, '\0', cap) != nullptr; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  unsigned mask = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> parts;
  lwfuzz::split(rest, std::string_view("\0", 1), kNumVars + 2, [&](std::string_view p) { parts.emplace_back(p); });
  for (int i = 0; i < kNumVars; ++i)
    g_values[i] = (mask >> i) & 1 ? (i < static_cast<int>(parts.size()) ? parts[i].c_str() : "") : nullptr;
  std::string name = parts.size() > kNumVars ? parts[kNumVars] : "server";
  std::string raw_globs = parts.size() > kNumVars + 1 ? parts[kNumVars + 1] : "";

  Config c;
  std::memset(&c, 0xA5, sizeof c);  // parse_config must set every field
  ConfigWarnings w;
  parse_config(fake_getenv, &c, &w);

  check(terminated(c.dir, sizeof c.dir) && c.dir[0] != '\0');
  check(terminated(c.match, sizeof c.match));
  check(c.sample_bytes >= 1 && c.sample_bytes <= (uint64_t{1} << 40));
  check(std::isfinite(c.interval_s) && c.interval_s >= 0.05 && c.interval_s <= 86400);
  check(c.max_frames >= 1 && c.max_frames <= kMaxFramesLimit);
  check(c.max_dumps >= 4 && c.max_dumps <= 100000);
  check(w.count >= 0 && w.count <= ConfigWarnings::kMax);
  for (int i = 0; i < w.count; ++i) check(terminated(w.text[i], sizeof w.text[i]));

  // The shim tests both basenames at start-up.
  (void)match_globs(c.match, name.c_str());
  (void)match_globs(raw_globs.c_str(), name.c_str());
  // An empty list matches everything.
  check(match_globs("", name.c_str()));
  return 0;
}
