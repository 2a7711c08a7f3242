// A minimal lock for the shim's rare slow paths. A spinlock (not a
// pthread mutex) because fork handlers must be able to reset it in the
// child, and holders never block while holding it.
//
// Thread-safety: that is its job. Async-signal-safe only if the signal
// cannot interrupt a holder on the same thread (the re-entrancy guard
// ensures the shim never takes it from a nested hook). Never allocates.
#pragma once

#include <atomic>
#include <sched.h>

namespace leakwatch::shim {

class SpinLock {
 public:
  void lock() {
    for (int spins = 0; flag_.exchange(1, std::memory_order_acquire); ++spins)
      if (spins > 64) sched_yield();
  }
  bool try_lock() { return flag_.load(std::memory_order_relaxed) == 0 && !flag_.exchange(1, std::memory_order_acquire); }
  void unlock() { flag_.store(0, std::memory_order_release); }
  bool held() const { return flag_.load(std::memory_order_relaxed) != 0; }
  void reset() { flag_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<int> flag_{0};
};

class LockGuard {
 public:
  explicit LockGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace leakwatch::shim
