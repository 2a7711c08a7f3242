// Reads this process's own memory without trusting that it is still
// mapped: a library can be dlclose'd by another thread between the moment
// /proc/self/maps lists it and the moment its headers are read. Reads
// /proc/thread-self/mem (open, pread, close: allowed by every seccomp
// profile; process_vm_readv, the first design, is not in all of them); an
// unmapped address reads as a failure, never a fault. Thread-local: once
// main() has ended with pthread_exit, /proc/self names a thread without
// an address space.
//
// /proc/.../mem reads what the kernel can reach, PROT_NONE pages included:
// fine for copies, wrong for "may this address be dereferenced?". That is
// readable(): one byte written from the address into a pipe, which fails
// (EFAULT) unless the program itself could read it.
//
// Thread-safety: any thread. Never allocates. Async-signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

// True when all n bytes at addr were copied to out.
bool safe_read(uintptr_t addr, void* out, std::size_t n);

// True when the byte at addr can be read by the program (mapped, and not
// PROT_NONE or write-only). pipe2, write, read, close: every profile has them.
bool readable(uintptr_t addr);

// While one is alive on this thread, its safe_reads share one descriptor
// and its readable() checks one pipe, opened at the first use and closed
// with the outermost scope: a rebuild of the loaded objects reads two
// headers per object, a libunwind walk checks every address it reads.
// Nests; no descriptor outlives it.
class SafeReadScope {
 public:
  SafeReadScope();
  ~SafeReadScope();
  SafeReadScope(const SafeReadScope&) = delete;
  SafeReadScope& operator=(const SafeReadScope&) = delete;
};

}  // namespace leakwatch::shim
