// Reads this process's own memory without trusting that it is still
// mapped: a library can be dlclose'd by another thread between the moment
// /proc/self/maps lists it and the moment its headers are read. Uses
// process_vm_readv on itself, else pread on /proc/self/mem (some seccomp
// profiles refuse one of them); a hole reads as a failure, never a fault.
//
// Thread-safety: any thread. Never allocates. Async-signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

// True when all n bytes at addr were copied to out.
bool safe_read(uintptr_t addr, void* out, std::size_t n);

}  // namespace leakwatch::shim
