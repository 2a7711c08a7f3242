// Call-stack capture for sampled allocations only.
//
// libunwind's unw_backtrace walks the stack with DWARF CFI (with its
// per-thread cache), so it works on the -fomit-frame-pointer code that
// distributions ship. Frames inside the shim itself are dropped, so frame
// 0 is the return address into the code that called the allocator.
// Every frame is a return address (callers subtract 1 to find the call).
//
// Thread-safety: any thread; callers hold the re-entrancy guard (libunwind
// may allocate). Not async-signal-safe in general.
#pragma once

#include <cstdint>

namespace leakwatch::shim {

void capture_init();  // learns the shim's own address range, sets libunwind caching
int capture_stack(uintptr_t* frames, int max_frames);
// True while this thread is inside libunwind for capture_stack (so a call
// to dl_iterate_phdr comes from libunwind: stack/loaded_objects.h answers
// it, and so do the hooks for its address checks).
bool capture_in_progress();

// Fork support: no thread may be inside libunwind at the instant of fork,
// or the child inherits its internal locks held and hangs at its first
// sampled allocation. prepare() bars new libunwind walks and waits for the
// ones in progress; parent() and child() lift the bar. The shim's own
// walker (cfi_walk.h) needs no bar (capture.cpp says why). A child of a
// process where other threads unwound may use a slower unwinder for its
// new threads.
void capture_fork_prepare();
void capture_fork_parent();
void capture_fork_child();

}  // namespace leakwatch::shim
