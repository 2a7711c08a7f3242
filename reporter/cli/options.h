// The command line's one option parser and its value syntax, shared by
// every command (so `--sample-bytes 16k`, `--fail-on-growth=200k`,
// `--interval 5s` all read the same way), and the per-command help that is
// printed from the same tables.
//
// Values:
//   bytes    4096, 64k, 16m, 1g (binary multiples; "KiB", "kb" accepted)
//   rate     bytes per second: 10240, 200k, 1m, "200k/s"
//   seconds  0.5, 5s, 2m, 1h, 1d
//   time     2026-12-06T10:00:00Z (or a space for the T; UTC unless an
//            offset like +02:00 is given), @1765000000 (Unix seconds), or
//            relative to now: -2h, 30m (ago)
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leakwatch::cli {

absl::StatusOr<uint64_t> parse_bytes(const std::string& s);
absl::StatusOr<double> parse_rate(const std::string& s);
absl::StatusOr<double> parse_seconds(const std::string& s);
// A moment, as wall-clock nanoseconds; `now_ns` anchors relative times.
absl::StatusOr<uint64_t> parse_time(const std::string& s, uint64_t now_ns);

enum class ValueKind { kNone, kText, kBytes, kRate, kSeconds, kCount, kTime, kHexId, kOptionalRate };

struct OptionSpec {
  const char* name;        // "--format"
  ValueKind kind;
  const char* value_name;  // "FMT" (shown in help)
  const char* help;
  bool repeatable = false;
};

struct OptionValue {
  const OptionSpec* spec = nullptr;
  std::string text;       // as given ("" for a flag, or an optional value left out)
  double number = 0;      // bytes, rate, seconds, count, time (ns) as parsed
  bool has_value = false;
};

struct ParsedArgs {
  std::vector<OptionValue> options;
  std::vector<std::string> positional;
  std::vector<std::string> after_dashes;  // everything after "--" (or after the first positional, see below)
  bool help = false;

  const OptionValue* last(const char* name) const;
  std::vector<const OptionValue*> all(const char* name) const;
  bool has(const char* name) const { return last(name) != nullptr; }
};

struct CommandSpec {
  const char* name;      // "report"
  const char* synopsis;  // "DIR|FILES... [options]"
  const char* summary;   // one line
  std::vector<OptionSpec> options;
  // `run`: the first positional argument starts the program (the rest of
  // the command line is its arguments, options included).
  bool program_follows = false;
};

// Parses argv (the words after the command name). Errors say, in one line,
// which word and why; `-h`/`--help` anywhere before "--" asks for help.
absl::StatusOr<ParsedArgs> parse_args(const CommandSpec& cmd, int argc, char** argv, uint64_t now_ns);

// "usage: leakwatch report DIR|FILES... [options]" and the options, aligned.
std::string command_help(const CommandSpec& cmd);

}  // namespace leakwatch::cli
