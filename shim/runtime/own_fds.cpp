#include "shim/runtime/own_fds.h"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/runtime/clock.h"

namespace leakwatch::shim {
namespace {

// fork() copies the descriptor table and the memory at different moments
// while the other threads run on (and a thread reading a /proc file is
// often the one the memory copy waits for: both need the mmap lock). Two
// rules keep the child's view of the registry true to its table:
// - A close while a fork is under way is deferred to the fork's end (the
//   parent's handler makes it; the child's closes its copy): the number
//   stays the shim's, so the host cannot be given it in between. A fork
//   that begins during a close waits for it.
// - An open waits while a fork is under way, and a fork waits for the
//   opens in flight to be registered (both bounded; the forking thread's
//   own opens are not waited for: a signal handler may fork from inside
//   one).
// A descriptor that slips through (a wait ran out: a thread descheduled
// for tens of ms in the middle of an open or a close) stays open in the
// child, as before; the child never closes one that is not the shim's, and
// checks each is still the file the shim opened (device, inode) first.
enum State : int { kFree, kClaimed, kLive, kClosing, kDeferred };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<uintptr_t> owner{0};
  std::atomic<int> fd{-1};
  std::atomic<dev_t> dev{0};
  std::atomic<ino_t> ino{0};
};
Slot g_slots[kOwnFdSlots];
std::atomic<int> g_forks{0};    // forks between their prepare and parent handlers (a futex word)
std::atomic<int> g_opening{0};  // opens (and closes) between the call and their registration
__thread int t_opening __attribute__((tls_model("initial-exec")));
__thread bool t_forking __attribute__((tls_model("initial-exec")));  // between this thread's fork handlers
// When this thread last waited out kOpenWaitNs: a process that forks
// back to back must not hold every open of a dump for that long.
__thread uint64_t t_gave_up_ns __attribute__((tls_model("initial-exec")));
constexpr uint64_t kGiveUpForNs = 1000ull * 1000000ull;
// An open waits at most this long for a fork to end (the thread may be in
// a dump or a rebuild; page faults wait for the fork's memory copy anyway);
// a fork at most kForkWaitNs for opens and closes in flight (a few
// microseconds each, unless the thread is descheduled).
constexpr uint64_t kOpenWaitNs = 20ull * 1000000ull;
constexpr uint64_t kForkWaitNs = 50ull * 1000000ull;

uintptr_t self() { return static_cast<uintptr_t>(pthread_self()); }

// close() without the cancellation point: the fork handlers run inside the
// host's fork(), and a pending cancel must not unwind out of it.
int raw_close(int fd) { return static_cast<int>(syscall(SYS_close, fd)); }

// The process the counts belong to. A child made without the fork
// handlers (_Fork, clone without CLONE_VM) inherits counts of threads it
// does not have: the first slow path that notices starts them afresh.
std::atomic<pid_t> g_pid{0};
bool counts_are_ours() {
  const pid_t pid = static_cast<pid_t>(syscall(SYS_getpid));
  const pid_t seen = g_pid.load(std::memory_order_relaxed);
  if (seen == pid) return true;
  if (seen == 0) {
    g_pid.store(pid, std::memory_order_relaxed);
    return true;
  }
  own_fds_after_fork_child();  // such a child has one thread, this one: what the handler would have seen
  return false;
}

void futex_wait(std::atomic<int>* word, int seen, uint64_t ns) {
  struct timespec ts = {static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
}

// An open or close between its call and its registration: forks wait
// for these (own_fds_before_fork). This thread's are counted apart, so a
// fork from a signal handler does not wait for the code it interrupted.
void count_in() {
  ++t_opening;
  g_opening.fetch_add(1, std::memory_order_seq_cst);
}
void count_out() {
  g_opening.fetch_sub(1, std::memory_order_seq_cst);
  --t_opening;
}

// Counts an open in flight, once no fork is under way (or after
// kOpenWaitNs: then a child may keep this one, as before).
class OpenInFlight {
 public:
  OpenInFlight() {
    ++t_opening;  // first: a fork from a signal handler here must not wait for this thread
    if (g_forks.load(std::memory_order_seq_cst) != 0) counts_are_ours();
    const int saved = errno;
    const uint64_t start = mono_ns(), deadline = start + kOpenWaitNs;
    const bool patient = t_gave_up_ns == 0 || start - t_gave_up_ns >= kGiveUpForNs;
    for (; patient && !t_forking;) {
      const int forks = g_forks.load(std::memory_order_seq_cst);
      if (forks == 0) {
        g_opening.fetch_add(1, std::memory_order_seq_cst);
        if (g_forks.load(std::memory_order_seq_cst) == 0) {
          errno = saved;
          return;
        }
        g_opening.fetch_sub(1, std::memory_order_seq_cst);
        continue;
      }
      const uint64_t now = mono_ns();
      if (now >= deadline) {
        t_gave_up_ns = now;
        break;
      }
      futex_wait(&g_forks, forks, deadline - now);
    }
    g_opening.fetch_add(1, std::memory_order_seq_cst);
    errno = saved;
  }
  ~OpenInFlight() { count_out(); }
  OpenInFlight(const OpenInFlight&) = delete;
  OpenInFlight& operator=(const OpenInFlight&) = delete;
};

void track(int fd) {
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) return;
  for (Slot& s : g_slots) {
    int expected = kFree;
    if (s.state.load(std::memory_order_relaxed) == kFree && s.state.compare_exchange_strong(expected, kClaimed)) {
      s.owner.store(self(), std::memory_order_relaxed);
      s.fd.store(fd, std::memory_order_relaxed);
      s.dev.store(st.st_dev, std::memory_order_relaxed);
      s.ino.store(st.st_ino, std::memory_order_relaxed);
      s.state.store(kLive, std::memory_order_seq_cst);
      return;
    }
  }
}

Slot* find(int fd) {
  const uintptr_t me = self();
  for (Slot& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kLive && s.fd.load(std::memory_order_relaxed) == fd &&
        s.owner.load(std::memory_order_relaxed) == me)
      return &s;
  return nullptr;
}

bool still_ours(const Slot& s) {
  struct stat st;
  return ::fstat(s.fd.load(std::memory_order_relaxed), &st) == 0 && st.st_dev == s.dev.load(std::memory_order_relaxed) &&
         st.st_ino == s.ino.load(std::memory_order_relaxed);
}

// Closes a deferred slot's descriptor unless someone else already took it.
void close_deferred(Slot* s) {
  int deferred = kDeferred;
  if (!s->state.compare_exchange_strong(deferred, kClosing)) return;
  const int saved = errno;
  raw_close(s->fd.load(std::memory_order_relaxed));
  s->state.store(kFree, std::memory_order_release);
  errno = saved;
}

}  // namespace

int own_open(const char* path, int flags, mode_t mode) { return own_openat(AT_FDCWD, path, flags, mode); }

int own_openat(int dir, const char* path, int flags, mode_t mode) {
  OpenInFlight in_flight;
  const int fd = ::openat(dir, path, flags, mode);
  track(fd);
  return fd;
}

int own_pipe(int fds[2], int flags) {
  OpenInFlight in_flight;
  if (::syscall(SYS_pipe2, fds, flags) != 0) return -1;
  track(fds[0]);
  track(fds[1]);
  return 0;
}

int own_close(int fd) {
  Slot* s = find(fd);
  if (!s) return raw_close(fd);
  s->state.store(kClosing, std::memory_order_seq_cst);  // a child skips it: keeps it at worst
  // In flight like an open: a fork that begins now waits for the close to
  // be done, or this close sees the fork and is deferred.
  count_in();
  if (g_forks.load(std::memory_order_seq_cst) != 0 && !t_forking && counts_are_ours()) {
    s->state.store(kDeferred, std::memory_order_seq_cst);
    count_out();
    // The fork may have ended before the parent's handler looked: then
    // whichever of the two takes the slot back closes it.
    if (g_forks.load(std::memory_order_seq_cst) == 0) close_deferred(s);
    return 0;
  }
  const int r = raw_close(fd);
  const int saved = errno;
  s->state.store(kFree, std::memory_order_release);
  count_out();
  errno = saved;
  return r;
}

void own_fds_before_fork() {
  counts_are_ours();
  t_forking = true;
  g_forks.fetch_add(1, std::memory_order_seq_cst);
  const uint64_t deadline = mono_ns() + kForkWaitNs;
  while (g_opening.load(std::memory_order_seq_cst) > t_opening && mono_ns() < deadline) sched_yield();
}

void own_fds_after_fork_parent() {
  t_forking = false;
  if (g_forks.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
  for (Slot& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == kDeferred) close_deferred(&s);
  const int saved = errno;
  syscall(SYS_futex, reinterpret_cast<int*>(&g_forks), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
  errno = saved;
}

int own_fds_after_fork_child() {
  const uintptr_t me = self();
  const int saved = errno;
  int closed = 0;
  for (Slot& s : g_slots) {
    const int state = s.state.load(std::memory_order_relaxed);
    const bool mine = s.owner.load(std::memory_order_relaxed) == me;
    if (state == kFree || (mine && state != kDeferred)) continue;
    // Another thread's live or deferred descriptor: close it while it is
    // still the file the shim opened. Claimed or closing: leave it.
    if ((state == kLive || state == kDeferred) && still_ours(s)) {
      raw_close(s.fd.load(std::memory_order_relaxed));
      ++closed;
    }
    s.state.store(kFree, std::memory_order_relaxed);
  }
  g_forks.store(0, std::memory_order_relaxed);
  t_forking = false;
  g_opening.store(t_opening, std::memory_order_relaxed);
  g_pid.store(static_cast<pid_t>(syscall(SYS_getpid)), std::memory_order_relaxed);
  errno = saved;
  return closed;
}

}  // namespace leakwatch::shim
