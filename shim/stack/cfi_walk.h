// A stack walker of our own over the unwind tables (.eh_frame), with a
// cache of each return address's rule: the fast path of capture.cpp.
//
// Why: libunwind's unw_backtrace costs ~160 instructions to set up and
// ~70-140 per frame even with its trace cache; every sampled allocation
// pays that, and at LEAKWATCH_SAMPLE_BYTES=1 it was ~40% of the shim's
// instructions. On x86-64 compiled code a frame's unwind rule is almost
// always "the caller's stack pointer (the CFA) is RSP or RBP plus an
// offset; the return address is at CFA-8; the caller's RBP is unchanged or
// saved at CFA+k". Those rules are read from the object's .eh_frame_hdr
// and .eh_frame (the same tables libunwind and the C++ runtime use, mapped
// with the object's code), computed once per address and cached.
//
// Code without unwind tables (JIT code, or hand-written assembly in an
// object that has tables) is walked as libunwind walks it: by its guess
// that RBP is a frame pointer, believed only for an RBP above the frame's
// stack pointer by at most 16 KiB. libunwind checks every read it makes
// after such a guess with a system call; this walker reads only within the
// thread's own stack (stack_bounds.h) and leaves any other read to it; nor
// does it read, for an address found past a guess (which may be any
// value), the tables of an object that dlopen loaded (a dlclose may be
// unmapping it). An address in no object is cached too, for as long as
// the list of objects that missed it is current and would not be rebuilt
// for a miss.
//
// Never a different stack from libunwind's: whenever a frame needs anything
// else -- a signal frame, a CFA expression (stack realignment), a register
// rule it does not follow, a CFA that does not move up the stack, a guessed
// read outside the thread's own stack -- cfi_backtrace() returns -1 and the
// caller walks with libunwind instead. tests/unit/cfi_walk_test.cpp
// compares the two on many stack shapes, JIT-like frames among them.
// (libunwind decides a guess once per address and caches the outcome; this
// walker decides it per walk: the two differ only where a frame pointer's
// plausibility changes between walks through one address, i.e. where RBP
// is not a frame pointer.)
//
// Cached rules are keyed by address and the loaded-objects generation
// (dlopen/dlclose bump it, dlclose again once the object is gone), and a
// rule is only read from, and kept for, a list of objects made for the
// walk's generation: code unloaded and replaced at the same address is
// never unwound with its predecessor's rule.
//
// Thread-safety: any thread; the cache is lock-free (one writer per slot at
// a time, readers validate). Never allocates after cfi_walk_init(). Reads
// only the object tables of addresses found on this thread's stack, the
// stack itself where those tables say, and after a guess only the thread's
// own stack.
#pragma once

namespace leakwatch::shim {

// Reserves the cache of 2^slot_bits rules (untouched pages until used;
// tests pass a tiny one to make addresses share slots). False: not
// available, cfi_backtrace() then always returns -1.
constexpr int kCfiSlotBits = 14;  // 16,384 addresses, 512 KiB reserved
bool cfi_walk_init(int slot_bits = kCfiSlotBits);

// The return addresses of the calling thread's stack, from the caller of
// cfi_backtrace outwards, as unw_backtrace() gives them (out[0] is the
// return address into the function that called cfi_backtrace). Returns how
// many, or -1 when some frame needs libunwind.
int cfi_backtrace(void** out, int max);

}  // namespace leakwatch::shim
