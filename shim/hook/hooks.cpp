// The interposed symbols: glue only. Each hook has the same shape -- an
// inlined countdown (or, for free, one mask test), the real call on the
// fast path, and a noinline slow path in record/recorder.cpp.
// The list of symbols is runtime/hooked_symbols.def.

#include <cerrno>
#include <cstddef>
#include <cstdarg>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <cstdint>
#include <sys/syscall.h>
#include <sys/types.h>

#include <dlfcn.h>

#include "shim/hook/deepbind.h"
#include "shim/record/real_functions.h"
#include "shim/record/granule_marks.h"
#include "shim/record/recorder.h"
#include "shim/runtime/kept_dirs.h"
#include "shim/runtime/lifecycle.h"
#include "shim/runtime/safe_read.h"
#include "shim/sample/sampler.h"
#include "shim/stack/capture.h"
#include "shim/stack/loaded_objects.h"

using namespace leakwatch::shim;

#define LW_EXPORT extern "C" __attribute__((visibility("default")))
#define LW_LIKELY(x) __builtin_expect(!!(x), 1)
#define LW_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace {

// g_real's malloc, free, realloc and malloc_usable_size are never null
// (real_functions.cpp).
inline __attribute__((always_inline)) void* do_malloc(std::size_t n, Op op) {
  if (LW_LIKELY(sample_tick(n))) return g_real.malloc(n);
  return alloc_slow(op, n, 0);
}

inline __attribute__((always_inline)) void do_free(void* p) {
  if (LW_UNLIKELY(maybe_sampled(p))) return free_slow(p);
  g_real.free(p);
}

inline __attribute__((always_inline)) void* do_aligned(Op op, std::size_t align, std::size_t n) {
  if (LW_LIKELY(sample_tick(n))) {
    if (op == Op::kNewAligned) {
      void* p = nullptr;
      if (LW_LIKELY(g_real.posix_memalign != nullptr)) return g_real.posix_memalign(&p, align, n) == 0 ? p : nullptr;
    } else if (op == Op::kMemalign && g_real.memalign) {
      return g_real.memalign(align, n);
    } else if (op == Op::kAlignedAlloc && g_real.aligned_alloc) {
      return g_real.aligned_alloc(align, n);
    } else if (op == Op::kValloc && g_real.valloc) {
      return g_real.valloc(n);
    } else if (op == Op::kPvalloc && g_real.pvalloc) {
      return g_real.pvalloc(n);
    }
  }
  return alloc_slow(op, n, align);
}

}  // namespace

LW_EXPORT void* malloc(size_t n) { return do_malloc(n, Op::kMalloc); }

LW_EXPORT void free(void* p) { do_free(p); }

LW_EXPORT void* calloc(size_t count, size_t size) {
  size_t n;
  if (LW_UNLIKELY(__builtin_mul_overflow(count, size, &n))) {
    if (g_real.calloc) return g_real.calloc(count, size);  // lets the allocator report it
    errno = ENOMEM;
    return nullptr;
  }
  if (LW_LIKELY(sample_tick(n))) {
    auto f = g_real.calloc;
    if (LW_LIKELY(f != nullptr)) return f(count, size);
  }
  return alloc_slow(Op::kCalloc, n, 0);
}

LW_EXPORT void* realloc(void* p, size_t n) {
  if (p == nullptr) return do_malloc(n, Op::kMalloc);
  if (LW_UNLIKELY(maybe_sampled(p))) return realloc_slow(p, n);
  return realloc_unsampled(p, n);
}

LW_EXPORT void* reallocarray(void* p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, n);
}

LW_EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (LW_LIKELY(sample_tick(n))) {
    auto f = g_real.posix_memalign;
    if (LW_LIKELY(f != nullptr)) return f(out, align, n);
  }
  return posix_memalign_slow(out, align, n);
}

LW_EXPORT void* aligned_alloc(size_t align, size_t n) { return do_aligned(Op::kAlignedAlloc, align, n); }
LW_EXPORT void* memalign(size_t align, size_t n) { return do_aligned(Op::kMemalign, align, n); }
LW_EXPORT void* valloc(size_t n) { return do_aligned(Op::kValloc, 4096, n); }
LW_EXPORT void* pvalloc(size_t n) { return do_aligned(Op::kPvalloc, 4096, n); }

LW_EXPORT size_t malloc_usable_size(void* p) {
  if (p == nullptr) return 0;
  if (in_bootstrap(p)) return bootstrap_size(p);
  return g_real.malloc_usable_size(p);
}

// ---- C++ operators. On failure the next operator new runs the
// new-handler loop and throws, exactly as without the shim.

LW_EXPORT void* _Znwm(size_t n) {
  void* p = do_malloc(n, Op::kNew);
  if (LW_LIKELY(p != nullptr)) return p;
  return g_real._Znwm ? g_real._Znwm(n) : nullptr;
}
LW_EXPORT void* _Znam(size_t n) {
  void* p = do_malloc(n, Op::kNew);
  if (LW_LIKELY(p != nullptr)) return p;
  return g_real._Znam ? g_real._Znam(n) : nullptr;
}
LW_EXPORT void* _ZnwmRKSt9nothrow_t(size_t n, const void*) { return do_malloc(n, Op::kNew); }
LW_EXPORT void* _ZnamRKSt9nothrow_t(size_t n, const void*) { return do_malloc(n, Op::kNew); }
LW_EXPORT void* _ZnwmSt11align_val_t(size_t n, size_t align) {
  void* p = do_aligned(Op::kNewAligned, align, n);
  if (LW_LIKELY(p != nullptr)) return p;
  return g_real._ZnwmSt11align_val_t ? g_real._ZnwmSt11align_val_t(n, align) : nullptr;
}
LW_EXPORT void* _ZnamSt11align_val_t(size_t n, size_t align) {
  void* p = do_aligned(Op::kNewAligned, align, n);
  if (LW_LIKELY(p != nullptr)) return p;
  return g_real._ZnamSt11align_val_t ? g_real._ZnamSt11align_val_t(n, align) : nullptr;
}
LW_EXPORT void* _ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void*) {
  return do_aligned(Op::kNewAligned, align, n);
}
LW_EXPORT void* _ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void*) {
  return do_aligned(Op::kNewAligned, align, n);
}

LW_EXPORT void _ZdlPv(void* p) { do_free(p); }
LW_EXPORT void _ZdaPv(void* p) { do_free(p); }
LW_EXPORT void _ZdlPvm(void* p, size_t) { do_free(p); }
LW_EXPORT void _ZdaPvm(void* p, size_t) { do_free(p); }
LW_EXPORT void _ZdlPvRKSt9nothrow_t(void* p, const void*) { do_free(p); }
LW_EXPORT void _ZdaPvRKSt9nothrow_t(void* p, const void*) { do_free(p); }
LW_EXPORT void _ZdlPvSt11align_val_t(void* p, size_t) { do_free(p); }
LW_EXPORT void _ZdaPvSt11align_val_t(void* p, size_t) { do_free(p); }
LW_EXPORT void _ZdlPvmSt11align_val_t(void* p, size_t, size_t) { do_free(p); }
LW_EXPORT void _ZdaPvmSt11align_val_t(void* p, size_t, size_t) { do_free(p); }
LW_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void* p, size_t, const void*) { do_free(p); }
LW_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void* p, size_t, const void*) { do_free(p); }

// ---- jemalloc's API (only called by programs that link jemalloc).

LW_EXPORT void sdallocx(void* p, size_t n, int flags) {
  if (LW_UNLIKELY(maybe_sampled(p) || g_real.sdallocx == nullptr)) {
    if (!p) return;
    if (forget_if_sampled(p) || g_real.sdallocx == nullptr) {
      // A sampled block may have been over-aligned (aligned new, or moved
      // by a realloc with headroom): let jemalloc find the size itself.
      if (g_real.dallocx) g_real.dallocx(p, flags);
      else do_free(p);
      return;
    }
  }
  g_real.sdallocx(p, n, flags);
}

LW_EXPORT void dallocx(void* p, int flags) {
  if (LW_UNLIKELY(maybe_sampled(p) || g_real.dallocx == nullptr)) {
    if (!p) return;
    forget_if_sampled(p);
    if (g_real.dallocx == nullptr) return do_free(p);
  }
  g_real.dallocx(p, flags);
}

// ---- Anonymous mappings: each one goes to the recorder, which samples it
// (a system call already; the trial costs nothing next to it). A file
// mapping goes straight to the system, unless it is fixed and may replace
// a sampled mapping.

namespace {
inline __attribute__((always_inline)) void* do_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (LW_LIKELY(!(flags & MAP_ANONYMOUS) && (!(flags & MAP_FIXED) || g_mappings.empty()))) {
    auto f = g_real.mmap;
    if (LW_LIKELY(f != nullptr)) return f(addr, len, prot, flags, fd, off);
  }
  return mmap_slow(addr, len, prot, flags, fd, off, reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
}
}  // namespace

LW_EXPORT void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return do_mmap(addr, len, prot, flags, fd, off);
}
LW_EXPORT void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return do_mmap(addr, len, prot, flags, fd, off);
}

LW_EXPORT int munmap(void* addr, size_t len) {
  if (LW_LIKELY(g_mappings.empty() && g_real.munmap != nullptr)) return g_real.munmap(addr, len);
  return munmap_slow(addr, len);
}

LW_EXPORT void* mremap(void* old_addr, size_t old_len, size_t new_len, int flags, ...) {
  void* new_addr = nullptr;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    new_addr = va_arg(ap, void*);
    va_end(ap);
  }
  return mremap_slow(old_addr, old_len, new_len, flags, new_addr);
}

// ---- dlopen (hook/deepbind.h).

namespace {
// The shim's own definitions, in the order of hooked_symbols.def.
const Redirect kRedirects[] = {
#define LW_HOOK(sym, ret, params) {#sym, reinterpret_cast<uintptr_t>(&::sym)},
#include "shim/runtime/hooked_symbols.def"
#undef LW_HOOK
};

__attribute__((noinline)) void* dlopen_deepbind(const char* file, int mode, const void* caller) {
  return deepbind_dlopen(file, mode, caller, kRedirects, sizeof kRedirects / sizeof kRedirects[0]);
}
}  // namespace

// Every change to the loaded objects invalidates the unwinder's list and
// its cached rules, which then cost a /proc/self/maps read and a fresh rule
// for every frame: only real loads and unloads may change them. (A host
// calling dlopen(NULL) + dlclose around each lookup ran 30x slower.)
// dlopen changes them first, as it must stay a sibling call (glibc looks
// up the caller's search path from the return address), so the list is
// rebuilt before a new object's constructors allocate. dlopen(NULL) and
// RTLD_NOLOAD cannot load anything, nor can reopening a loaded object:
// the loader is asked first (by name or soname, which it matches before
// any search path; the reference taken is given back).
namespace {
// The loader's count of objects added and removed so far (dlpi_adds,
// dlpi_subs); 0 if it cannot tell. Takes the loader's lock: only around a
// dlclose, which takes it anyway.
int count_changes(struct dl_phdr_info* info, size_t size, void* out) {
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
    *static_cast<unsigned long long*>(out) = info->dlpi_adds + (info->dlpi_subs << 32);
  return 1;
}
unsigned long long loader_changes() {
  unsigned long long n = 0;
  if (g_real.dl_iterate_phdr) g_real.dl_iterate_phdr(count_changes, &n);
  return n;
}

// The real dlclose; *unloaded: an object went (or the loader cannot say).
int close_counting(void* handle, bool* unloaded) {
  const unsigned long long before = loader_changes();
  const int r = g_real.dlclose(handle);
  *unloaded = before == 0 || loader_changes() != before;
  return r;
}

__attribute__((noinline)) bool already_loaded(const char* file) {
  void* h = g_real.dlopen(file, RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return false;
  // Another thread's dlclose meanwhile may leave ours the last reference:
  // then the object is gone, and the host's dlopen loads it again.
  bool unloaded;
  close_counting(h, &unloaded);
  return !unloaded;
}
}  // namespace

LW_EXPORT void* dlopen(const char* file, int mode) {
  if (LW_UNLIKELY(g_real.dlopen == nullptr)) resolve_real_functions();
  if (file != nullptr && (mode & RTLD_NOLOAD) == 0 && !already_loaded(file)) loaded_objects_changed();
  if (LW_UNLIKELY(mode & RTLD_DEEPBIND)) return dlopen_deepbind(file, mode, __builtin_return_address(0));
  return g_real.dlopen(file, mode);  // a sibling call: dlopen sees the caller's return address
}

// Changed after the call, and only if an object went: while its destructors
// run (they may allocate) it is still mapped and in the list.
LW_EXPORT int dlclose(void* handle) {
  if (LW_UNLIKELY(g_real.dlclose == nullptr)) resolve_real_functions();
  bool unloaded;
  const int r = close_counting(handle, &unloaded);
  if (unloaded) loaded_objects_changed();
  return r;
}

LW_EXPORT int pipe2(int* fds, int flags) {
  if (LW_UNLIKELY(capture_in_progress())) {
    errno = EMFILE;
    return -1;
  }
  if (LW_UNLIKELY(g_real.pipe2 == nullptr)) resolve_real_functions();
  return g_real.pipe2(fds, flags);
}

LW_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  if (LW_UNLIKELY(fd < 0) && capture_in_progress()) {
    errno = EAGAIN;  // "the validation pipe is empty": libunwind goes on to write
    return -1;
  }
  if (LW_UNLIKELY(g_real.read == nullptr)) resolve_real_functions();
  return g_real.read(fd, buf, n);
}

// Before the filesystem view changes (hooked_symbols.def).
inline void before_fs_change() {
  if (enabled()) keep_dirs_before_fs_change(g_config.dir);
  if (LW_UNLIKELY(g_real.chroot == nullptr)) resolve_real_functions();
}

LW_EXPORT long syscall(long number, ...) {
  // Up to six arguments, as the kernel takes; those the caller did not
  // pass are read but never used.
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  // The descriptor is an int (passed zero-extended, as the kernel reads it).
  if (LW_UNLIKELY(number == SYS_write && static_cast<int>(a[0]) < 0) && capture_in_progress()) {
    if (a[2] == 0 || readable(static_cast<uintptr_t>(a[1]))) return a[2] ? 1 : 0;
    errno = EFAULT;
    return -1;
  }
  if (LW_UNLIKELY(number == SYS_unshare || number == SYS_setns || number == SYS_mount || number == SYS_chroot ||
                  number == SYS_pivot_root))
    before_fs_change();
  if (LW_UNLIKELY(g_real.syscall == nullptr)) resolve_real_functions();
  return g_real.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

LW_EXPORT int unshare(int flags) {
  before_fs_change();
  if (!g_real.unshare) return static_cast<int>(::syscall(SYS_unshare, flags));
  return g_real.unshare(flags);
}

LW_EXPORT int setns(int fd, int nstype) {
  before_fs_change();
  if (!g_real.setns) return static_cast<int>(::syscall(SYS_setns, fd, nstype));
  return g_real.setns(fd, nstype);
}

LW_EXPORT int mount(const char* source, const char* target, const char* type, unsigned long flags,
                    const void* data) {
  before_fs_change();
  if (!g_real.mount) return static_cast<int>(::syscall(SYS_mount, source, target, type, flags, data));
  return g_real.mount(source, target, type, flags, data);
}

LW_EXPORT int chroot(const char* path) {
  before_fs_change();
  if (!g_real.chroot) return static_cast<int>(::syscall(SYS_chroot, path));
  return g_real.chroot(path);
}

LW_EXPORT int mincore(void* addr, size_t len, unsigned char* vec) {
  if (LW_UNLIKELY(capture_in_progress())) {
    // Resident or not, a page libunwind may read is one the program can read.
    const uintptr_t first = reinterpret_cast<uintptr_t>(addr);
    for (size_t i = 0; i < (len + 4095) / 4096; ++i) {
      if (!readable(first + i * 4096)) {
        errno = ENOMEM;
        return -1;
      }
      vec[i] = 1;
    }
    return 0;
  }
  if (LW_UNLIKELY(g_real.mincore == nullptr)) resolve_real_functions();
  if (g_real.mincore == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return g_real.mincore(addr, len, vec);
}

LW_EXPORT int dl_iterate_phdr(int (*callback)(struct dl_phdr_info*, size_t, void*), void* data) {
  if (LW_UNLIKELY(capture_in_progress())) return loaded_objects_iterate(callback, data);
  if (LW_UNLIKELY(g_real.dl_iterate_phdr == nullptr)) resolve_real_functions();
  return g_real.dl_iterate_phdr(callback, data);
}
