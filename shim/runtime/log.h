// Logging from inside a host process.
//
// Writes one line straight to fd 2 from a stack buffer: stdio may allocate
// or take locks the host holds. The shim is silent unless something is
// wrong, and then it says each kind of thing once.
//
// Thread-safety: any thread. Async-signal-safe (write, fstat, fcntl). Never allocates.
#pragma once

namespace leakwatch::shim {

// Kinds of message that are printed at most once per process.
enum class Once : int {
  kBadConfig0, kBadConfig1, kBadConfig2, kBadConfig3, kBadConfig4, kBadConfig5, kBadConfig6, kBadConfig7,
  kDumpDirUnwritable, kDumpWriteFailed, kSampleTableFull, kStackTableFull, kInternalOom,
  kUnwindFailed, kDeepBind, kNoProcMaps, kCount
};

// Remembers what fd 2 is at start-up (call first): lines go there only
// while it is that, or a terminal, pipe or append-mode file (log.cpp).
void log_init();

// printf-like subset: %s, %d, %ld, %lu, %zu, %x, %%.
void log_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// As log_line, but only the first time for `kind` (until reset_once, used after fork).
void log_once(Once kind, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void reset_once(Once kind);
void reset_all_once();  // in a fork child: it is a process of its own

// Formats into buf (always NUL-terminated); returns the length written.
int format_to(char* buf, int cap, const char* fmt, __builtin_va_list ap);
int format(char* buf, int cap, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace leakwatch::shim
