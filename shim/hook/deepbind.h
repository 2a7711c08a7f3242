// Libraries opened with RTLD_DEEPBIND look symbols up in their own
// dependencies before the global scope, so their calls to malloc and free
// go to libc directly, past the shim: their allocations would be invisible
// and their frees of sampled blocks would leave phantom live blocks.
//
// The dlopen hook (hooks.cpp) handles the flag: it opens the library as the
// caller would have (a bare name is resolved with the caller's search path,
// which dlopen would otherwise take from the shim, its apparent caller),
// then points every GOT slot of a hooked symbol that was bound past the
// shim back at the shim's hook. Calls without the flag go straight to the
// real dlopen with the caller's own return address (a tail jump).
//
// Thread-safety: called from dlopen on the host's thread; takes the
// loader's lock (dl_iterate_phdr, dladdr1) like any dlopen caller. Never
// holds a lock of the shim's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leakwatch::shim {

struct Redirect {
  const char* name;
  uintptr_t hook;  // the shim's definition
};

// dlopen(file, mode | RTLD_DEEPBIND) on behalf of `caller` (its return
// address), then the redirection of every object's slots for `table`.
void* deepbind_dlopen(const char* file, int mode, const void* caller, const Redirect* table, int n);

// Redirects the GOT slots of every loaded object (except the shim, the
// loader and the allocator's own library) that hold the next allocator's
// definition of a symbol in `table`. Returns the number of slots changed.
int redirect_bound_past_shim(const Redirect* table, int n);

}  // namespace leakwatch::shim
