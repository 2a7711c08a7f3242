// Thread cancellation held off for a scope.
//
// The shim's own file I/O (open, read, pread, write, close) happens on the
// host's threads, and those calls are cancellation points. A thread that a
// host cancels there would end while holding the shim's shared state: the
// dump lock, a claimed checkpoint (no periodic dump for an hour), the
// loaded-objects rebuild, the fork barrier's count of unwinding threads
// (every later fork would wait). Inside such a scope a pending cancel
// waits for the host's own next cancellation point.
//
// Thread-safety: per-thread state only. Async-signal-safe in glibc (an
// atomic update of the thread's cancel flags). Never allocates.
#pragma once

#include <pthread.h>

namespace leakwatch::shim {

class NoCancel {
 public:
  NoCancel() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
  ~NoCancel() { pthread_setcancelstate(old_, nullptr); }
  NoCancel(const NoCancel&) = delete;
  NoCancel& operator=(const NoCancel&) = delete;

 private:
  int old_ = PTHREAD_CANCEL_ENABLE;
};

}  // namespace leakwatch::shim
