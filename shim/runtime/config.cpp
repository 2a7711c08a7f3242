#include "shim/runtime/config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fnmatch.h>

#include "shim/runtime/log.h"

namespace leakwatch::shim {
namespace {

void warn(ConfigWarnings* w, const char* name, const char* value, const char* why, const char* fallback) {
  if (!w || w->count >= ConfigWarnings::kMax) return;
  format(w->text[w->count++], 256, "ignoring %s=\"%s\": %s; using %s", name, value, why, fallback);
}

bool parse_u64(const char* s, uint64_t* out, bool allow_suffix) {
  if (!*s) return false;
  uint64_t v = 0;
  const char* p = s;
  for (; *p >= '0' && *p <= '9'; ++p) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (*p - '0');
  }
  if (p == s) return false;
  if (allow_suffix && *p) {
    int shift = 0;
    switch (*p) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: return false;
    }
    ++p;
    if (*p == 'i' || *p == 'I') ++p;
    if (*p == 'b' || *p == 'B') ++p;
    if (v > (UINT64_MAX >> shift)) return false;
    v <<= shift;
  }
  if (*p) return false;
  *out = v;
  return true;
}

// strtod without locale surprises: digits, optional fraction.
bool parse_seconds(const char* s, double* out) {
  double v = 0;
  const char* p = s;
  bool digits = false;
  for (; *p >= '0' && *p <= '9'; ++p) v = v * 10 + (*p - '0'), digits = true;
  if (*p == '.') {
    double scale = 0.1;
    for (++p; *p >= '0' && *p <= '9'; ++p) v += (*p - '0') * scale, scale /= 10, digits = true;
  }
  if (!digits || *p) return false;
  *out = v;
  return true;
}

void copy(char* dst, std::size_t cap, const char* a, const char* b = "") {
  std::size_t n = 0;
  for (; *a && n + 1 < cap; ++a) dst[n++] = *a;
  for (; *b && n + 1 < cap; ++b) dst[n++] = *b;
  dst[n] = '\0';
}

}  // namespace

void parse_config(GetEnv getenv, Config* c, ConfigWarnings* w) {
  const char* tmp = getenv("TMPDIR");
  if (tmp && *tmp && std::strlen(tmp) < kMaxPath - 16)
    copy(c->dir, kMaxPath, tmp, "/leakwatch");
  else
    copy(c->dir, kMaxPath, "/tmp/leakwatch");
  c->sample_bytes = 524288;
  c->interval_s = 60;
  c->match[0] = '\0';
  c->max_frames = 64;
  c->disable = false;
  c->max_dumps = 256;

  if (const char* v = getenv("LEAKWATCH_DIR")) {
    if (!*v)
      warn(w, "LEAKWATCH_DIR", v, "empty", c->dir);
    else if (std::strlen(v) >= kMaxPath - 128)
      warn(w, "LEAKWATCH_DIR", "...", "path too long", c->dir);
    else
      copy(c->dir, kMaxPath, v);
  }
  if (const char* v = getenv("LEAKWATCH_SAMPLE_BYTES")) {
    uint64_t n;
    if (!parse_u64(v, &n, true))
      warn(w, "LEAKWATCH_SAMPLE_BYTES", v, "not a byte count", "524288");
    else if (n < 1 || n > (uint64_t{1} << 40))
      warn(w, "LEAKWATCH_SAMPLE_BYTES", v, "out of range 1..1T", "524288");
    else
      c->sample_bytes = n;
  }
  if (const char* v = getenv("LEAKWATCH_INTERVAL")) {
    double s;
    if (!parse_seconds(v, &s))
      warn(w, "LEAKWATCH_INTERVAL", v, "not a number of seconds", "60");
    else if (s < 0.05 || s > 86400)
      warn(w, "LEAKWATCH_INTERVAL", v, "out of range 0.05..86400", "60");
    else
      c->interval_s = s;
  }
  if (const char* v = getenv("LEAKWATCH_MATCH")) {
    bool has_glob = false;
    for (const char* p = v; *p; ++p) has_glob |= (*p != ',' && *p != ' ');
    if (std::strlen(v) >= kMaxMatch)
      warn(w, "LEAKWATCH_MATCH", "...", "too long", "all");
    else if (*v && !has_glob)
      warn(w, "LEAKWATCH_MATCH", v, "no pattern in the list", "all");
    else
      copy(c->match, kMaxMatch, v);
  }
  if (const char* v = getenv("LEAKWATCH_MAX_FRAMES")) {
    uint64_t n;
    if (!parse_u64(v, &n, false))
      warn(w, "LEAKWATCH_MAX_FRAMES", v, "not a whole number", "64");
    else if (n < 1 || n > kMaxFramesLimit)
      warn(w, "LEAKWATCH_MAX_FRAMES", v, "out of range 1..256", "64");
    else
      c->max_frames = static_cast<int>(n);
  }
  if (const char* v = getenv("LEAKWATCH_DISABLE")) {
    if (!std::strcmp(v, "1") || !std::strcmp(v, "true") || !std::strcmp(v, "yes"))
      c->disable = true;
    else if (*v && std::strcmp(v, "0") && std::strcmp(v, "false") && std::strcmp(v, "no"))
      warn(w, "LEAKWATCH_DISABLE", v, "expected 1 or 0", "enabled");
  }
  if (const char* v = getenv("LEAKWATCH_MAX_DUMPS")) {
    uint64_t n;
    if (!parse_u64(v, &n, false))
      warn(w, "LEAKWATCH_MAX_DUMPS", v, "not a whole number", "256");
    else if (n < 4 || n > 100000)
      warn(w, "LEAKWATCH_MAX_DUMPS", v, "out of range 4..100000", "256");
    else
      c->max_dumps = static_cast<int>(n);
  }
}

bool match_globs(const char* globs, const char* name) {
  if (!globs || !*globs) return true;
  char pat[kMaxMatch];
  const char* p = globs;
  while (*p) {
    std::size_t n = 0;
    while (*p && *p != ',' && n + 1 < sizeof pat) pat[n++] = *p++;
    pat[n] = '\0';
    if (*p == ',') ++p;
    // Trim spaces so "a, b" works as a user would expect.
    char* s = pat;
    while (*s == ' ') ++s;
    while (n > 0 && pat[n - 1] == ' ') pat[--n] = '\0';
    if (*s && fnmatch(s, name, 0) == 0) return true;
  }
  return false;
}

}  // namespace leakwatch::shim
