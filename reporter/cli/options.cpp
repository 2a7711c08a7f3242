#include "reporter/cli/options.h"

#include <cmath>
#include <cstring>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace leakwatch::cli {

namespace {

bool consume_suffix(std::string* s, const char* suffix) {
  size_t n = std::strlen(suffix);
  if (s->size() < n || s->compare(s->size() - n, n, suffix) != 0) return false;
  s->resize(s->size() - n);
  return true;
}

bool consume_prefix(std::string* s, const char* prefix) {
  size_t n = std::strlen(prefix);
  if (s->compare(0, n, prefix) != 0) return false;
  s->erase(0, n);
  return true;
}

// "12.5k" -> 12.5 * 1024. Suffixes are binary; "i" and "b" may follow.
bool number_with_suffix(std::string s, double* out) {
  s = absl::AsciiStrToLower(s);
  double mult = 1;
  consume_suffix(&s, "b");  // "kb", "kib" -> "k"
  consume_suffix(&s, "i");
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': mult = 1024.0; break;
      case 'm': mult = 1024.0 * 1024; break;
      case 'g': mult = 1024.0 * 1024 * 1024; break;
      case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
      default: break;
    }
    if (mult != 1) s.pop_back();
  }
  double v;
  if (s.empty() || !absl::SimpleAtod(s, &v) || !std::isfinite(v) || v < 0) return false;
  if (!(s[0] >= '0' && s[0] <= '9') && s[0] != '.') return false;  // no "+5", "inf"
  *out = v * mult;
  return true;
}

}  // namespace

absl::StatusOr<uint64_t> parse_bytes(const std::string& s) {
  double v;
  if (!number_with_suffix(s, &v) || v != std::floor(v) || v > 1.8e19)
    return absl::InvalidArgumentError(absl::StrCat("'", s, "' is not a byte count (like 4096, 64k, 16m, 1g)"));
  return static_cast<uint64_t>(v);
}

absl::StatusOr<double> parse_rate(const std::string& s) {
  std::string t = s;
  consume_suffix(&t, "/s");
  double v;
  if (!number_with_suffix(t, &v))
    return absl::InvalidArgumentError(absl::StrCat("'", s, "' is not a rate in bytes per second (like 10240, 200k, 1m)"));
  return v;
}

absl::StatusOr<double> parse_seconds(const std::string& s) {
  std::string t = absl::AsciiStrToLower(s);
  double mult = 1;
  if (consume_suffix(&t, "ms")) mult = 1e-3;
  else if (consume_suffix(&t, "s")) mult = 1;
  else if (consume_suffix(&t, "m")) mult = 60;
  else if (consume_suffix(&t, "h")) mult = 3600;
  else if (consume_suffix(&t, "d")) mult = 86400;
  double v;
  if (t.empty() || (!(t[0] >= '0' && t[0] <= '9') && t[0] != '.') || !absl::SimpleAtod(t, &v) || !std::isfinite(v) || v < 0)
    return absl::InvalidArgumentError(absl::StrCat("'", s, "' is not a duration (like 0.5, 5s, 2m, 1h)"));
  return v * mult;
}

absl::StatusOr<uint64_t> parse_time(const std::string& s, uint64_t now_ns) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("'", s, "' is not a time (like 2026-12-06T10:00:00Z, @1765000000, or -2h for two hours ago)"));
  };
  if (s.empty()) return bad();
  if (s[0] == '@') {
    double v;
    if (!absl::SimpleAtod(s.substr(1), &v) || !(v >= 0)) return bad();
    return static_cast<uint64_t>(v * 1e9);
  }
  if (s[0] == '-' || (s.find_first_of("-:T ") == std::string::npos)) {
    auto ago = parse_seconds(s[0] == '-' ? s.substr(1) : s);
    if (!ago.ok()) return bad();
    uint64_t d = static_cast<uint64_t>(*ago * 1e9);
    return d > now_ns ? 0 : now_ns - d;
  }
  // YYYY-MM-DD[Thh:mm[:ss]][Z|+hh:mm|-hh:mm]
  struct tm tm {};
  int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return bad();
  std::string rest = s.substr(used);
  if (!rest.empty() && (rest[0] == 'T' || rest[0] == ' ')) {
    int n = 0;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d%n", &h, &mi, &n) != 2) return bad();
    rest = rest.substr(1 + n);
    if (!rest.empty() && rest[0] == ':') {
      if (std::sscanf(rest.c_str() + 1, "%2d%n", &sec, &n) != 1) return bad();
      rest = rest.substr(1 + n);
    }
  }
  long offset_s = 0;
  if (rest == "Z" || rest.empty()) {
  } else if ((rest[0] == '+' || rest[0] == '-') && rest.size() == 6 && rest[3] == ':') {
    int oh, om;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2) return bad();
    offset_s = (rest[0] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
  } else {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return bad();
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return bad();
  long long secs = static_cast<long long>(t) - offset_s;
  if (secs < 0) return bad();
  return static_cast<uint64_t>(secs) * 1000000000ull;
}

const OptionValue* ParsedArgs::last(const char* name) const {
  for (auto it = options.rbegin(); it != options.rend(); ++it)
    if (std::string(it->spec->name) == name) return &*it;
  return nullptr;
}

std::vector<const OptionValue*> ParsedArgs::all(const char* name) const {
  std::vector<const OptionValue*> out;
  for (const auto& o : options)
    if (std::string(o.spec->name) == name) out.push_back(&o);
  return out;
}

namespace {

absl::Status parse_value(const OptionSpec& spec, const std::string& text, uint64_t now_ns, OptionValue* v) {
  v->text = text;
  v->has_value = true;
  auto fail = [&](const absl::Status& st) {
    return absl::InvalidArgumentError(absl::StrCat(spec.name, ": ", st.message()));
  };
  switch (spec.kind) {
    case ValueKind::kNone:
      break;
    case ValueKind::kText:
      if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(spec.name, ": an empty value"));
      break;
    case ValueKind::kBytes: {
      auto b = parse_bytes(text);
      if (!b.ok()) return fail(b.status());
      v->number = static_cast<double>(*b);
      break;
    }
    case ValueKind::kRate:
    case ValueKind::kOptionalRate: {
      auto r = parse_rate(text);
      if (!r.ok()) return fail(r.status());
      v->number = *r;
      break;
    }
    case ValueKind::kSeconds: {
      auto s = parse_seconds(text);
      if (!s.ok()) return fail(s.status());
      v->number = *s;
      break;
    }
    case ValueKind::kCount: {
      uint64_t n;
      if (!absl::SimpleAtoi(text, &n)) return absl::InvalidArgumentError(absl::StrCat(spec.name, ": '", text, "' is not a whole number"));
      v->number = static_cast<double>(n);
      break;
    }
    case ValueKind::kTime: {
      auto t = parse_time(text, now_ns);
      if (!t.ok()) return fail(t.status());
      v->number = static_cast<double>(*t);
      break;
    }
    case ValueKind::kHexId: {
      uint64_t n;
      std::string t = absl::AsciiStrToLower(text);
      consume_prefix(&t, "0x");
      if (t.empty() || t.size() > 16 || !absl::SimpleHexAtoi(t, &n))
        return absl::InvalidArgumentError(absl::StrCat(spec.name, ": '", text, "' is not an instance id (16 hex digits)"));
      v->number = 0;
      v->text = absl::StrFormat("%016x", n);
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ParsedArgs> parse_args(const CommandSpec& cmd, int argc, char** argv, uint64_t now_ns) {
  ParsedArgs out;
  auto error = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(cmd.name, ": ", why, " (see leakwatch ", cmd.name, " --help)"));
  };
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) out.after_dashes.push_back(argv[i]);
      break;
    }
    if (a == "-h" || a == "--help") {
      out.help = true;
      continue;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (a[1] >= '0' && a[1] <= '9'))) {
      std::string name = a, value;
      bool inline_value = false;
      if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
      const OptionSpec* spec = nullptr;
      for (const auto& o : cmd.options)
        if (name == o.name) spec = &o;
      if (!spec) return error(absl::StrCat("unknown option '", name, "'"));
      if (!spec->repeatable)
        for (const auto& o : out.options)
          if (o.spec == spec) return error(absl::StrCat(spec->name, " given twice"));
      OptionValue v;
      v.spec = spec;
      if (spec->kind == ValueKind::kNone) {
        if (inline_value) return error(absl::StrCat(spec->name, " takes no value"));
      } else if (spec->kind == ValueKind::kOptionalRate) {
        // The value is optional: "--opt=RATE", or the next word when it is a rate.
        if (!inline_value && i + 1 < argc && parse_rate(argv[i + 1]).ok()) value = argv[++i], inline_value = true;
        if (inline_value) {
          if (auto st = parse_value(*spec, value, now_ns, &v); !st.ok()) return error(std::string(st.message()));
        }
      } else {
        if (!inline_value) {
          if (i + 1 >= argc) return error(absl::StrCat(spec->name, " needs a value (", spec->value_name, ")"));
          value = argv[++i];
        }
        if (auto st = parse_value(*spec, value, now_ns, &v); !st.ok()) return error(std::string(st.message()));
      }
      out.options.push_back(std::move(v));
      continue;
    }
    if (cmd.program_follows) {
      for (; i < argc; ++i) out.after_dashes.push_back(argv[i]);
      break;
    }
    out.positional.push_back(a);
  }
  return out;
}

std::string command_help(const CommandSpec& cmd) {
  std::string s = absl::StrCat("usage: leakwatch ", cmd.name, *cmd.synopsis ? " " : "", cmd.synopsis, "\n", cmd.summary, "\n");
  if (cmd.options.empty()) return s;
  s += "\noptions:\n";
  size_t width = 0;
  auto left = [](const OptionSpec& o) {
    if (o.kind == ValueKind::kNone) return std::string(o.name);
    if (o.kind == ValueKind::kOptionalRate) return absl::StrCat(o.name, "[=", o.value_name, "]");
    return absl::StrCat(o.name, " ", o.value_name);
  };
  for (const auto& o : cmd.options) width = std::max(width, left(o).size());
  for (const auto& o : cmd.options)
    absl::StrAppend(&s, absl::StrFormat("  %-*s  %s\n", static_cast<int>(width), left(o), o.help));
  absl::StrAppend(&s, absl::StrFormat("  %-*s  %s\n", static_cast<int>(width), "-h, --help", "this help"));
  return s;
}

}  // namespace leakwatch::cli
