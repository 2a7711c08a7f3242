// What one dump holds, assembled from the recorder's tables: identity and
// run facts (IDNT), the module map (MODS), the frames of the recorded
// stacks with their symbol names (FRMS), the stacks (STKS) and the per-
// stack estimates (RECS). docs/dump-format.md is the specification.
//
// Thread-safety: one caller at a time (the dump lock): the module history
// and the per-stack totals of the last dump are shared state. Memory from
// the scratch Arena and mmap, never malloc.
#pragma once

#include <cstdint>

#include "shim/dump/encoder.h"
#include "shim/runtime/proc_memory.h"

namespace leakwatch::shim {

enum class DumpReason : int { kPeriodic = 0, kFinal = 1, kTrigger = 2, kHighWater = 3 };
const char* dump_reason_name(DumpReason r);

struct DumpFacts {
  uint64_t seq = 0;
  DumpReason reason = DumpReason::kPeriodic;
  ProcMemory memory;            // the kernel's view at dump time
  uint64_t retention_level = 0; // kept dumps are at least interval << level apart
  uint64_t mono_ns = 0, wall_ns = 0;  // the moment of the snapshot (not when the file is done)
};

bool payload_init();  // reserves the tables that outlive one dump (after recorder_init: sized by the stack table)
void payload_release();
// In a fork child whose parent was writing a dump at the instant of fork:
// the module history and the symbol cache may be mid-update; start them anew.
void payload_after_fork_child();
// kNoMaps: /proc/self/maps unreadable, so no frame could be placed in a module.
enum class BuildResult { kOk, kNoMemory, kNoMaps };
BuildResult build_payload(PayloadBuilder& b, Arena& scratch, const DumpFacts& facts);

}  // namespace leakwatch::shim
