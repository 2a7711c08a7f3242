// The functions the shim forwards to: whatever allocator comes next in
// symbol lookup order (glibc, jemalloc, tcmalloc), found with
// dlsym(RTLD_NEXT). Until they are resolved -- dlsym itself allocates --
// requests are served from a small static bootstrap arena that free()
// and realloc() recognise.
//
// Thread-safety: resolve_real_functions() may race with itself; both
// racers store the same values. Never calls the hooked malloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <link.h>  // struct dl_phdr_info, in hooked_symbols.def
#include <sys/types.h>  // ssize_t


namespace leakwatch::shim {

struct RealFunctions {
#define LW_HOOK(sym, ret, params) ret(*sym) params;
#include "shim/runtime/hooked_symbols.def"
#undef LW_HOOK
};

// Hidden: every hook's tail call then reads the pointer straight from
// g_real (`jmp *g_real+off(%rip)`), not through the GOT.
extern RealFunctions g_real __attribute__((visibility("hidden")));

// Resolves g_real; returns false if malloc/free could not be found.
bool resolve_real_functions();
bool real_functions_ready();

// Bootstrap arena: serves allocations made while resolving.
void* bootstrap_alloc(std::size_t n, std::size_t align);
extern char g_bootstrap_arena[];
constexpr std::size_t kBootstrapSize = 256 * 1024;
inline bool in_bootstrap(const void* p) {
  return static_cast<std::size_t>(static_cast<const char*>(p) - g_bootstrap_arena) < kBootstrapSize;
}
// Requested size of a bootstrap allocation.
std::size_t bootstrap_size(const void* p);

// glibc's chunk header: the word before a block holds its chunk size (the
// low three bits are flags; bit 1 marks a block mmapped by itself, whose
// header is two words). realloc's hook reads it before and after the call
// -- glibc has just touched it -- instead of calling malloc_usable_size()
// twice. Read only when resolve_real_functions() found glibc's own malloc
// (not a debugging or other allocator) and checked blocks of every bin
// size against malloc_usable_size().
extern bool g_glibc_chunks __attribute__((visibility("hidden")));
// Below glibc's smallest mmap threshold a request is served from an arena.
constexpr std::size_t kGlibcHeapBelow = 128 * 1024;
// kGlibcHeapBelow when g_glibc_chunks, else 0: realloc's hook tests both
// with one compare (n >= this: not predicted from the chunk header).
extern std::size_t g_glibc_realloc_below __attribute__((visibility("hidden")));
constexpr std::size_t kGlibcFlags = 7, kGlibcMmapped = 2;
inline std::size_t glibc_chunk_word(const void* p) { return static_cast<const std::size_t*>(p)[-1]; }
inline std::size_t glibc_usable_of(std::size_t h) { return (h & ~kGlibcFlags) - ((h & kGlibcMmapped) != 0 ? 16 : 8); }
inline std::size_t glibc_usable_size(const void* p) { return glibc_usable_of(glibc_chunk_word(p)); }
std::size_t other_usable_size(void* p);  // malloc_usable_size, out of line
inline std::size_t real_usable_size(void* p) {
  return g_glibc_chunks ? glibc_usable_size(p) : other_usable_size(p);
}

}  // namespace leakwatch::shim
