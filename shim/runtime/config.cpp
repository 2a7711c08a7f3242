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

void copy(char* dst, std::size_t cap, const char* a, const char* b = "", const char* c = "") {
  std::size_t n = 0;
  for (; *a && n + 1 < cap; ++a) dst[n++] = *a;
  for (; *b && n + 1 < cap; ++b) dst[n++] = *b;
  for (; *c && n + 1 < cap; ++c) dst[n++] = *c;
  dst[n] = '\0';
}

// kPath default: the directory `name` in $TMPDIR, or in /tmp when TMPDIR is
// unset, empty or too long to append to (a fixed path beats a truncated one).
void default_path(GetEnv getenv, const char* name, char* out, std::size_t cap) {
  const char* tmp = getenv("TMPDIR");
  if (!tmp || !*tmp || std::strlen(tmp) >= cap - 16) tmp = "/tmp";
  copy(out, cap, tmp, "/", name);
}

// kPath: any non-empty path short enough that the writer can append its
// file names; otherwise the default (already in *out) stays.
void parse_path(GetEnv getenv, const char* name, char* out, std::size_t cap, ConfigWarnings* w) {
  const char* v = getenv(name);
  if (!v) return;
  if (!*v)
    warn(w, name, v, "empty", out);
  else if (std::strlen(v) >= cap - 128)
    warn(w, name, "...", "path too long", out);
  else
    copy(out, cap, v);
}

// kGlobs: a comma-separated list with at least one pattern in it (an empty
// value is the default: everything).
void parse_globs(GetEnv getenv, const char* name, const char* def_text, char* out, std::size_t cap,
                 ConfigWarnings* w) {
  const char* v = getenv(name);
  if (!v) return;
  bool has_glob = false;
  for (const char* p = v; *p; ++p) has_glob |= (*p != ',' && *p != ' ');
  if (std::strlen(v) >= cap)
    warn(w, name, "...", "too long", def_text);
  else if (*v && !has_glob)
    warn(w, name, v, "no pattern in the list", def_text);
  else
    copy(out, cap, v);
}

// "1048576" -> "1m": range limits as a user would write them.
void bytes_text(char* out, int cap, uint64_t v) {
  static const char* const kSuffixes[] = {"", "k", "m", "g", "t"};
  int i = 0;
  while (i < 4 && v >= 1024 && v % 1024 == 0) v /= 1024, ++i;
  const char* suffix = kSuffixes[i];
  format(out, cap, "%lu%s", static_cast<unsigned long>(v), suffix);
}

void range_text(char* out, int cap, ConfigKind kind, double lo, double hi) {
  char a[32], b[32];
  if (kind == kBytes) {
    bytes_text(a, sizeof a, static_cast<uint64_t>(lo));
    bytes_text(b, sizeof b, static_cast<uint64_t>(hi));
  } else if (kind == kSeconds) {
    // 0.05 .. 86400: print fractions to the hundredth.
    auto secs = [](char* o, int n, double v) {
      long whole = static_cast<long>(v);
      long hundredths = static_cast<long>((v - static_cast<double>(whole)) * 100 + 0.5);
      if (hundredths) format(o, n, "%ld.%s%ld", whole, hundredths < 10 ? "0" : "", hundredths);
      else format(o, n, "%ld", whole);
    };
    secs(a, sizeof a, lo);
    secs(b, sizeof b, hi);
  } else {
    format(a, sizeof a, "%ld", static_cast<long>(lo));
    format(b, sizeof b, "%ld", static_cast<long>(hi));
  }
  format(out, cap, "out of range %s..%s", a, b);
}

// Parses one numeric variable; on success stores it in *out.
template <typename T>
void parse_number(GetEnv getenv, const char* name, ConfigKind kind, double lo, double hi, const char* def_text,
                  T* out, ConfigWarnings* w) {
  const char* v = getenv(name);
  if (!v) return;
  double x = 0;
  if (kind == kSeconds) {
    if (!parse_seconds(v, &x)) return warn(w, name, v, "not a number of seconds", def_text);
  } else if (kind == kFlag) {
    if (!std::strcmp(v, "1") || !std::strcmp(v, "true") || !std::strcmp(v, "yes")) x = 1;
    else if (!*v || !std::strcmp(v, "0") || !std::strcmp(v, "false") || !std::strcmp(v, "no")) x = 0;
    else return warn(w, name, v, "expected 1 or 0", "enabled");
  } else {
    uint64_t n;
    if (!parse_u64(v, &n, kind == kBytes))
      return warn(w, name, v, kind == kBytes ? "not a byte count" : "not a whole number", def_text);
    if (n > (uint64_t{1} << 53)) n = uint64_t{1} << 53;  // exact as a double, and out of every range
    x = static_cast<double>(n);
  }
  if (x < lo || x > hi) {
    char why[96];
    range_text(why, sizeof why, kind, lo, hi);
    return warn(w, name, v, why, def_text);
  }
  *out = static_cast<T>(x);
}

}  // namespace

void parse_config(GetEnv getenv, Config* c, ConfigWarnings* w) {
  // Everything comes from the table: defaults first, then each variable
  // that is set, the text ones before the numbers (the order warnings have
  // always come in).
#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) LW_DEFAULT_##kind(field, def)
#define LW_DEFAULT_kPath(field, def) default_path(getenv, def, c->field, sizeof c->field);
#define LW_DEFAULT_kGlobs(field, def) copy(c->field, sizeof c->field, def);
#define LW_DEFAULT_kBytes(field, def) c->field = def;
#define LW_DEFAULT_kSeconds(field, def) c->field = def;
#define LW_DEFAULT_kCount(field, def) c->field = def;
#define LW_DEFAULT_kFlag(field, def) c->field = def;
#include "shim/dump/config_table.def"
#undef LW_VAR

#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) LW_PARSE_TEXT_##kind(field, name, def_text)
#define LW_PARSE_TEXT_kPath(field, name, def_text) parse_path(getenv, name, c->field, sizeof c->field, w);
#define LW_PARSE_TEXT_kGlobs(field, name, def_text) parse_globs(getenv, name, def_text, c->field, sizeof c->field, w);
#define LW_PARSE_TEXT_kBytes(...)
#define LW_PARSE_TEXT_kSeconds(...)
#define LW_PARSE_TEXT_kCount(...)
#define LW_PARSE_TEXT_kFlag(...)
#include "shim/dump/config_table.def"
#undef LW_VAR

#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) LW_PARSE_##kind(field, name, kind, lo, hi, def_text)
#define LW_PARSE_kPath(...)
#define LW_PARSE_kGlobs(...)
#define LW_PARSE_NUMBER(field, name, kind, lo, hi, def_text) \
  parse_number(getenv, name, kind, static_cast<double>(lo), static_cast<double>(hi), def_text, &c->field, w);
#define LW_PARSE_kBytes LW_PARSE_NUMBER
#define LW_PARSE_kSeconds LW_PARSE_NUMBER
#define LW_PARSE_kCount LW_PARSE_NUMBER
#define LW_PARSE_kFlag LW_PARSE_NUMBER
#include "shim/dump/config_table.def"
#undef LW_VAR
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
