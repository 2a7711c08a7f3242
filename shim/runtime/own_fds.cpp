#include "shim/runtime/own_fds.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/runtime/clock.h"

namespace leakwatch::shim {
namespace {

// fork() copies the descriptor table and the memory at two different
// moments while the other threads run on, and a thread reading a /proc
// file is often the one the memory copy waits for (both need the mmap
// lock). So a child may see a descriptor in its table whose slot the
// parent had already given back. A close during a fork therefore leaves
// the slot as a tombstone until the fork is over, and the child closes
// those too. A slot also holds what its descriptor is (device, inode): the
// child closes a number only while it still is that file, never one the
// host has taken since.
//
// The other way round, a descriptor opened before the table is copied and
// registered after the memory is: opens and forks keep apart. An open
// waits while a fork is being prepared or made (a few ms; never more than
// kOpenWaitNs), and a fork waits for the opens in flight to be registered
// (never more than kForkWaitNs), not counting the forking thread's own (a
// signal handler may fork from inside one).
enum State : int { kFree, kClaimed, kLive, kTomb };

struct Slot {
  std::atomic<int> state{kFree};
  uintptr_t owner = 0;
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};
Slot g_slots[kOwnFdSlots];
std::atomic<int> g_forks{0};    // forks between their prepare and parent handlers
std::atomic<int> g_opening{0};  // opens between the call and their registration
__thread int t_opening __attribute__((tls_model("initial-exec")));
__thread bool t_forking __attribute__((tls_model("initial-exec")));  // between this thread's fork handlers
constexpr uint64_t kOpenWaitNs = 200ull * 1000000ull;
constexpr uint64_t kForkWaitNs = 50ull * 1000000ull;

// Counts an open in flight, once no fork is under way (or waiting has gone
// on too long: then a child may keep this one, as before).
class OpenInFlight {
 public:
  OpenInFlight() {
    uint64_t deadline = 0;
    for (;;) {
      g_opening.fetch_add(1, std::memory_order_seq_cst);
      if (g_forks.load(std::memory_order_seq_cst) == 0 || t_forking) break;
      if (deadline == 0) deadline = mono_ns() + kOpenWaitNs;
      else if (mono_ns() >= deadline) break;
      g_opening.fetch_sub(1, std::memory_order_seq_cst);
      sched_yield();
    }
    ++t_opening;
  }
  ~OpenInFlight() {
    --t_opening;
    g_opening.fetch_sub(1, std::memory_order_seq_cst);
  }
  OpenInFlight(const OpenInFlight&) = delete;
  OpenInFlight& operator=(const OpenInFlight&) = delete;
};

uintptr_t self() { return static_cast<uintptr_t>(pthread_self()); }

void track(int fd) {
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) return;
  for (Slot& s : g_slots) {
    int expected = kFree;
    if (s.state.load(std::memory_order_relaxed) == kFree && s.state.compare_exchange_strong(expected, kClaimed)) {
      s.owner = self();
      s.fd = fd;
      s.dev = st.st_dev;
      s.ino = st.st_ino;
      s.state.store(kLive, std::memory_order_seq_cst);
      return;
    }
  }
}

void untrack(int fd) {
  const uintptr_t me = self();
  for (Slot& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) == kLive && s.fd == fd && s.owner == me) {
      s.state.store(g_forks.load(std::memory_order_seq_cst) ? kTomb : kFree, std::memory_order_seq_cst);
      return;
    }
  }
}

}  // namespace

int own_open(const char* path, int flags, mode_t mode) {
  OpenInFlight in_flight;
  const int fd = ::open(path, flags, mode);
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
  const int r = ::close(fd);
  const int saved = errno;
  untrack(fd);
  errno = saved;
  return r;
}

void own_fds_before_fork() {
  t_forking = true;
  g_forks.fetch_add(1, std::memory_order_seq_cst);
  const uint64_t deadline = mono_ns() + kForkWaitNs;
  while (g_opening.load(std::memory_order_seq_cst) > t_opening && mono_ns() < deadline) sched_yield();
}

void own_fds_after_fork_parent() {
  t_forking = false;
  if (g_forks.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
  for (Slot& s : g_slots) {
    int tomb = kTomb;
    s.state.compare_exchange_strong(tomb, kFree);
  }
}

int own_fds_after_fork_child() {
  const uintptr_t me = self();
  const int saved = errno;
  int closed = 0;
  for (Slot& s : g_slots) {
    const int state = s.state.load(std::memory_order_relaxed);
    if (state == kFree || (state == kLive && s.owner == me)) continue;
    struct stat st;
    if (state != kClaimed && s.owner != me && ::fstat(s.fd, &st) == 0 && st.st_dev == s.dev &&
        st.st_ino == s.ino) {
      ::close(s.fd);
      ++closed;
    }
    s.state.store(kFree, std::memory_order_relaxed);
  }
  g_forks.store(0, std::memory_order_relaxed);
  t_forking = false;
  g_opening.store(t_opening, std::memory_order_relaxed);
  errno = saved;
  return closed;
}

}  // namespace leakwatch::shim
