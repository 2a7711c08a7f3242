// Shim configuration: parsed once from the environment by a pure function
// into an immutable struct, driven by shim/dump/config_table.def (names,
// defaults, ranges, help: the environment is part of the product's contract,
// shared with the reporter, which prints the table). Bad values produce a warning line and fall back to the
// default; the target always runs on.
//
// Thread-safety: parse_config is pure (reentrant). Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

constexpr std::size_t kMaxPath = 4096;
constexpr std::size_t kMaxMatch = 1024;
constexpr int kMaxFramesLimit = 256;

enum ConfigKind { kPath, kBytes, kSeconds, kGlobs, kCount, kFlag };

struct Config {
  // One field per row of the table: the text ones first, then the numbers
  // (the layout Config has always had).
#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) LW_TEXT_##kind(field)
#define LW_TEXT_kPath(field) char field[kMaxPath];
#define LW_TEXT_kGlobs(field) char field[kMaxMatch];  // "" = all
#define LW_TEXT_kBytes(field)
#define LW_TEXT_kSeconds(field)
#define LW_TEXT_kCount(field)
#define LW_TEXT_kFlag(field)
#include "shim/dump/config_table.def"
#undef LW_VAR
#define LW_VAR(field, name, kind, def, lo, hi, def_text, help) LW_FIELD_##kind(field)
#define LW_FIELD_kPath(field)
#define LW_FIELD_kGlobs(field)
#define LW_FIELD_kBytes(field) uint64_t field;
#define LW_FIELD_kSeconds(field) double field;
#define LW_FIELD_kCount(field) int field;
#define LW_FIELD_kFlag(field) bool field;
#include "shim/dump/config_table.def"
#undef LW_VAR
#undef LW_TEXT_kPath
#undef LW_TEXT_kGlobs
#undef LW_TEXT_kBytes
#undef LW_TEXT_kSeconds
#undef LW_TEXT_kCount
#undef LW_TEXT_kFlag
#undef LW_FIELD_kPath
#undef LW_FIELD_kGlobs
#undef LW_FIELD_kBytes
#undef LW_FIELD_kSeconds
#undef LW_FIELD_kCount
#undef LW_FIELD_kFlag
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
