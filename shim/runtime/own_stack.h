// Runs a function on a stack of the shim's own.
//
// Dumps are written by whichever host thread reaches a checkpoint, and a
// host thread's stack can be small (coroutines, green threads, threads
// created with 64 KiB stacks): the dump's work must not land on it. One
// stack is reserved at start-up (with a guard page below it); callers
// serialise on their own lock, so one is enough.
//
// Thread-safety: one caller at a time. Never allocates after init.
#pragma once

namespace leakwatch::shim {

bool own_stack_init();
// Runs fn(arg) on the shim's stack (on the caller's own when the shim's
// could not be reserved). Returns when fn returns.
void run_on_own_stack(void (*fn)(void*), void* arg);

}  // namespace leakwatch::shim
