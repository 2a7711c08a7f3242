// The shim's lifecycle state and its process-wide settings.
//
//   uninitialised -> initialising -> enabled -> (fork: child re-enters enabled)
//                                 \-> disabled (LEAKWATCH_DISABLE, no match, no memory)
//
// Hooks work in every state: before "enabled" and in "disabled" they only
// forward. The transitions, the fork policy and the final dump are the
// composition root's (shim/main/lifecycle.cpp); this header only holds
// what every stage reads.
//
// Thread-safety: the state is an atomic; g_config is written once before
// the state becomes enabled and is read-only afterwards.
#pragma once

#include <atomic>
#include <cstdint>

#include "shim/runtime/config.h"

namespace leakwatch::shim {

enum State : int { kUninitialized = 0, kInitializing = 1, kEnabled = 2, kDisabled = 3 };

extern std::atomic<int> g_state;
extern Config g_config;
// Dense mode: most live allocations are sampled, so every free asks the
// sampled set (record/granule_marks.h).
constexpr uint64_t kDenseBelow = 65536;  // S below this: dense mode
inline bool dense_mode() { return g_config.sample_bytes < kDenseBelow; }

inline bool enabled() { return g_state.load(std::memory_order_acquire) == kEnabled; }

}  // namespace leakwatch::shim
