// Whether a program can be profiled by preloading the shim, read from its
// ELF file (libelf) before it runs: a static executable loads no preload;
// a musl-linked one (Alpine) has no glibc for the shim to load with; one
// that defines malloc itself takes allocations past the shim.
//
// Thread-safety: pure functions; they read the file.
#pragma once

#include <string>

namespace leakwatch::cli {

enum class TargetKind { kPreloadable, kNotFound, kNotElf, kStatic, kMusl, kOwnMalloc, kScript };

struct TargetInfo {
  TargetKind kind = TargetKind::kNotFound;
  std::string path;         // the file examined (PATH resolved)
  std::string interpreter;  // PT_INTERP, or the #! line of a script
};

// `program` as exec would find it (a bare name is looked up along PATH).
TargetInfo inspect_target(const std::string& program);

// One line saying why the shim cannot see this target, "" when it can.
std::string target_problem(const TargetInfo& t);

}  // namespace leakwatch::cli
