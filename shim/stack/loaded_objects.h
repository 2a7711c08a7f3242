// dl_iterate_phdr for the unwinder, without the loader's lock.
//
// libunwind finds the unwind tables of each frame's object by calling
// dl_iterate_phdr, which holds the loader's lock for as long as any caller
// sits in its callback. A sampled allocation would then wait for whatever
// another host thread does inside its own dl_iterate_phdr callback (or for
// a dlopen running constructors) -- and deadlock if that thread waits for
// a lock the allocating thread holds. So the shim answers libunwind's calls
// itself (hooks.cpp interposes dl_iterate_phdr; only calls made while this
// thread is inside the shim's unwinder are answered here) from a snapshot
// of the loaded objects built from /proc/self/maps, with copies of their
// program headers. libunwind reads memory only of the object that contains
// the address being unwound, which is live code on the stack.
//
// The snapshot is rebuilt when dlopen or dlclose ran since it was made, and
// at most once a second when an address was in no object (a library loaded
// by other means, or JIT code).
//
// Thread-safety: any thread; readers and the rebuilder meet on a small
// spinning reader-writer gate, bounded both ways (a reader that cannot get
// in reports no objects: that frame ends the stack). Never calls malloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <link.h>

namespace leakwatch::shim {

using PhdrCallback = int (*)(struct dl_phdr_info*, size_t, void*);

void loaded_objects_init();  // the first snapshot, at start-up
// *built_for (if given): the generation the list served was made for;
// untouched when no list could be read.
int loaded_objects_iterate(PhdrCallback callback, void* data, uint64_t* built_for = nullptr);
// Changes whenever a new list is published: what was missing from the list
// (an address in no object) may be found in the next.
uint64_t loaded_objects_stamp();
// A miss now would rebuild the list (a second has passed since the last
// rebuild for one): a cached miss must be looked up again.
bool loaded_objects_miss_due();
// True for an object that was loaded with the program (listed at
// loaded_objects_init): it is never unloaded, so its memory may be read
// at any time. An object dlopen loaded may be unmapped by a dlclose before
// the list knows it.
bool loaded_object_stays(const struct dl_phdr_info* info);
void loaded_objects_changed();            // dlopen or dlclose: rebuild before the next use
uint64_t loaded_objects_generation();     // how many times that happened
void loaded_objects_after_fork_child();   // a reader or the rebuilder may have vanished mid-way

}  // namespace leakwatch::shim
