// The process's memory as the kernel sees it, from /proc/self: what a
// container's memory limit and the OOM killer count.
//
// Thread-safety: any thread. Never allocates (reads into the caller's or a
// stack buffer). Async-signal-safe (open, read, close).
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

struct ProcMemory {
  bool ok = false;
  uint64_t rss = 0;        // VmRSS: resident, all kinds
  uint64_t rss_anon = 0;   // RssAnon: private anonymous (heaps, stacks, anonymous mmap)
  uint64_t rss_file = 0;   // RssFile: file-backed (code, mapped files)
  uint64_t rss_shmem = 0;  // RssShmem: shared memory, tmpfs, memfd
  uint64_t hwm = 0;        // VmHWM: peak resident
  uint64_t swap = 0;       // VmSwap
  uint64_t vm_size = 0;    // VmSize: address space
  uint64_t threads = 0;
  uint64_t seccomp = 0;    // Seccomp: 0 none, 1 strict, 2 filter
};

// Parses /proc/self/status (about 1.5 KiB of text).
bool read_proc_memory(ProcMemory* out);
// Resident bytes from /proc/self/statm: the cheap read for frequent checks; 0 on failure.
uint64_t read_rss_bytes();

// Parses the text of a status file (exposed for tests).
void parse_proc_status(const char* text, ProcMemory* out);

// Which pages of a range are resident, from /proc/self/pagemap. Not
// mincore(), which is outside common seccomp allowlists (systemd's
// SystemCallFilter=@system-service kills the process on it); open, pread,
// ioctl and close are in every one. A range unmapped meanwhile reads as not
// resident.
//
// Linux 6.7+ answers with the PAGEMAP_SCAN ioctl: runs of present pages,
// so a 32 GiB reservation with 1 GiB touched (a JVM heap, a wasm or JIT
// arena) costs what the 1 GiB costs (2.3 ms, not 21 ms). Older kernels, any
// error, and processes under a seccomp filter (which may kill on an ioctl
// it does not expect) read bit 63 of every page's 8-byte entry instead.
class ResidentPages {
 public:
  ResidentPages();
  ~ResidentPages();
  ResidentPages(const ResidentPages&) = delete;
  ResidentPages& operator=(const ResidentPages&) = delete;
  bool ok() const { return fd_ >= 0 || core_; }
  // Resident bytes of the pages in [start, end); `buf` holds `entries`
  // pagemap entries at a time. 0 when the pagemap cannot be read. A
  // process that changed user may not open its own pagemap (its /proc
  // files belong to root then): mincore answers instead, unless a seccomp
  // filter is on (systemd's @system-service kills on mincore).
  uint64_t bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const;
  // The two ways, for tests. scan_bytes returns false when the kernel
  // cannot answer (then nothing is known of the range).
  bool scan_bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries, uint64_t* out) const;
  uint64_t entry_bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const;
  uint64_t core_bytes(uintptr_t start, uintptr_t end, uint64_t* buf, std::size_t entries) const;

 private:
  int fd_;
  bool core_;  // no pagemap: mincore
  bool scan_;  // PAGEMAP_SCAN may be tried (no seccomp filter, not refused before)
};

}  // namespace leakwatch::shim
