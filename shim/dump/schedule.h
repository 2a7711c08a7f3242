// When dumps are written, besides the final one at exit: the work of a
// checkpoint (runtime/checkpoint.h).
//
// - periodic: every LEAKWATCH_INTERVAL seconds, at the first checkpoint
//   after the interval ends (a process that allocates nothing writes
//   nothing until it allocates again: its sampled state cannot change);
// - on request: when the trigger file DIR/dump-now is newer than the last
//   one this process answered (`touch DIR/dump-now`, `leakwatch trigger
//   DIR`), looked at about once a second;
// - at a new memory high: when resident memory is LEAKWATCH_HIGH_WATER
//   percent above the last high-water dump (and at least 1 MiB more),
//   looked at about ten times a second, at most one such dump a second.
//   The newest is always kept, so a process killed by the OOM killer
//   leaves its worst moment behind.
//
// Thread-safety: the checkpoint runs on one thread at a time; the fork
// child calls schedule_after_fork_child before any other thread exists.
// Never allocates.
#pragma once

#include <cstdint>

namespace leakwatch::shim {

inline constexpr const char kTriggerFile[] = "dump-now";

void schedule_start();  // installs the checkpoint; the first dump is due one interval from now
void schedule_after_fork_child();
// The checkpoint's work (exposed for tests).
void schedule_checkpoint(uint64_t now_ns);

}  // namespace leakwatch::shim
