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
// Never a different stack from libunwind's: whenever a frame needs anything
// else -- no unwind table (JIT code), a signal frame, a CFA expression
// (stack realignment), a register rule it does not follow, a CFA that does
// not move up the stack -- cfi_backtrace() returns -1 and the caller walks
// with libunwind instead. tests/unit/cfi_walk_test.cpp compares the two on
// many stack shapes.
//
// Cached rules are keyed by address and the loaded-objects generation
// (dlopen/dlclose bump it, dlclose again once the object is gone), and a
// rule is only read from, and kept for, a list of objects made for the
// walk's generation: code unloaded and replaced at the same address is
// never unwound with its predecessor's rule.
//
// Thread-safety: any thread; the cache is lock-free (one writer per slot at
// a time, readers validate). Never allocates after cfi_walk_init(). Reads
// only the object tables of addresses found on this thread's stack, and the
// stack itself where those tables say.
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
