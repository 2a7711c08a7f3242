// Shim configuration: parsed once from the environment by a pure function
// into an immutable struct. Bad values produce a warning line and fall back
// to the default; the target always runs on.
//
// Thread-safety: parse_config is pure (reentrant). Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

constexpr std::size_t kMaxPath = 4096;
constexpr std::size_t kMaxMatch = 1024;
constexpr int kMaxFramesLimit = 256;

struct Config {
  char dir[kMaxPath];
  uint64_t sample_bytes;
  double interval_s;
  char match[kMaxMatch];  // "" = all
  int max_frames;
  bool disable;
  int max_dumps;
};

struct ConfigWarnings {
  static constexpr int kMax = 8;
  int count = 0;
  char text[kMax][256];
};

using GetEnv = const char* (*)(const char*);

// Reads every LEAKWATCH_* variable through `getenv` (and TMPDIR for the default dir).
void parse_config(GetEnv getenv, Config* out, ConfigWarnings* warnings);

// True if `name` matches one of the comma-separated fnmatch globs in `globs`
// (an empty list matches everything).
bool match_globs(const char* globs, const char* name);

}  // namespace leakwatch::shim
