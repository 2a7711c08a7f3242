// A long-running host that does, all at once and for SECONDS, everything
// that is hard on an allocation profiler (tests/e2e/cases/test_soak.py):
//   - threads that start, allocate and exit all the time (some through
//     pthread_exit, with thread_local destructors that free);
//   - fork: children allocate, verify and exit (exit() or _exit());
//   - dlopen/dlclose of PLUGIN (a small library built by the test) whose
//     constructor, destructor and entry point allocate;
//   - a signal handler that allocates, SIGALRM from setitimer at a high
//     rate (glibc's malloc is not async-signal-safe, so, as a careful real
//     program would, the handler allocates only when the interrupted
//     thread was not inside the allocator: only the main thread takes the
//     signal, and it flags its own allocator calls);
//   - realloc storms: blocks grown a little at a time to megabytes, shrunk
//     and freed, and many small blocks resized up and down.
// Its own memory is bounded (no leaks), so any growth of the process over
// time under the shim is the shim's.
// Usage: soak_target SECONDS PLUGIN.so
// Prints "soak ok ..." with the count of each kind of work and exits 0;
// any corruption seen aborts.
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lw_check.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<long> g_threads{0}, g_forks{0}, g_dl{0}, g_signals{0}, g_skipped{0}, g_reallocs{0}, g_main_ops{0};
const char* g_plugin;

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

void sleep_us(long us) {
  timespec ts{us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

// ---- The signal handler and the main thread's flagged allocator calls.
volatile sig_atomic_t g_main_in_alloc;

__attribute__((noinline)) void* handler_alloc(size_t n) {
  void* p = malloc(n);
  LW_ESCAPE(p);
  return p;
}

void on_alarm(int) {
  int saved = errno;
  if (g_main_in_alloc) {
    g_skipped.fetch_add(1, std::memory_order_relaxed);
    errno = saved;
    return;
  }
  long k = g_signals.fetch_add(1, std::memory_order_relaxed);
  char* p = static_cast<char*>(handler_alloc(32 + static_cast<size_t>(k % 5000)));
  if (p) {
    memset(p, 7, 32);
    char* q = static_cast<char*>(realloc(p, 6000 + static_cast<size_t>(k % 70000)));
    if (q) p = q;
    free(p);
  }
  void* c = calloc(4, 64 + static_cast<size_t>(k % 300));
  free(c);
  errno = saved;
}

void* m_malloc(size_t n) {
  g_main_in_alloc = 1;
  void* p = malloc(n);
  g_main_in_alloc = 0;
  return p;
}
void m_free(void* p) {
  g_main_in_alloc = 1;
  free(p);
  g_main_in_alloc = 0;
}
void* m_realloc(void* p, size_t n) {
  g_main_in_alloc = 1;
  void* q = realloc(p, n);
  g_main_in_alloc = 0;
  return q;
}

// ---- Short-lived threads.
struct Local {
  std::vector<std::string> v;
  ~Local() { v.clear(); }
};
thread_local Local t_local;

__attribute__((noinline)) void worker_round(uint64_t seed, int ops) {
  uint64_t rng = seed;
  void* slot[32] = {};
  size_t size[32] = {};
  uint64_t tag[32] = {};
  for (int i = 0; i < ops; ++i) {
    uint64_t r = lw_next(&rng);
    int s = static_cast<int>(r % 32);
    if (slot[s]) {
      LW_CHECK(lw_verify(slot[s], size[s], tag[s]));
      free(slot[s]);
    }
    size[s] = 1 + (r >> 8) % ((r & 0x10000) ? 200000 : 2000);
    tag[s] = r;
    slot[s] = (r & 0x20000) ? calloc(1, size[s]) : malloc(size[s]);
    LW_CHECK(slot[s]);
    lw_fill(slot[s], size[s], r);
  }
  for (int s = 0; s < 32; ++s) {
    if (slot[s]) LW_CHECK(lw_verify(slot[s], size[s], tag[s]));
    free(slot[s]);
  }
}

void* short_thread(void* arg) {
  uint64_t seed = reinterpret_cast<uintptr_t>(arg);
  t_local.v.assign(1 + seed % 20, std::string(100 + seed % 900, 'x'));
  worker_round(seed, 300 + static_cast<int>(seed % 700));
  g_threads.fetch_add(1, std::memory_order_relaxed);
  if (seed % 3 == 0) pthread_exit(nullptr);
  return nullptr;
}

void* spawner(void*) {
  uint64_t n = 0;
  while (!g_stop.load()) {
    pthread_t t[6];
    int started = 0;
    for (int i = 0; i < 6; ++i)
      if (pthread_create(&t[started], nullptr, short_thread, reinterpret_cast<void*>(++n * 7919)) == 0) ++started;
    for (int i = 0; i < started; ++i) pthread_join(t[i], nullptr);
  }
  return nullptr;
}

// ---- fork.
// glibc's dlclose runs __cxa_finalize under a lock that fork does not
// reset in the child, so a child forked in the middle of a dlclose would
// hang in exit(): a correct program does not fork during dlopen/dlclose.
pthread_mutex_t g_dl_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) void* child_leak(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 3, n);
  LW_ESCAPE(p);
  return p;
}

void* forker(void*) {
  uint64_t n = 0;
  while (!g_stop.load()) {
    ++n;
    pthread_mutex_lock(&g_dl_lock);
    pid_t pid = fork();
    LW_CHECK(pid >= 0);
    if (pid != 0) pthread_mutex_unlock(&g_dl_lock);
    if (pid == 0) {
      worker_round(n * 104729, 300);
      child_leak(1000 + n % 5000);
      if (n % 2) _exit(static_cast<int>(n % 100));
      exit(static_cast<int>(n % 100));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) LW_CHECK(errno == EINTR);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != static_cast<int>(n % 100)) {
      fprintf(stderr, "child %d: status %#x\n", static_cast<int>(pid), status);
      abort();
    }
    g_forks.fetch_add(1, std::memory_order_relaxed);
    sleep_us(100000);
  }
  return nullptr;
}

// ---- dlopen/dlclose.
void* dl_loop(void*) {
  uint64_t n = 0;
  while (!g_stop.load()) {
    pthread_mutex_lock(&g_dl_lock);
    void* h = dlopen(g_plugin, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      fprintf(stderr, "dlopen %s: %s\n", g_plugin, dlerror());
      abort();
    }
    auto work = reinterpret_cast<unsigned long (*)(unsigned long)>(dlsym(h, "soak_plugin_work"));
    LW_CHECK(work);
    unsigned long got = work(++n);
    LW_CHECK(got != 0);
    LW_CHECK(dlclose(h) == 0);
    pthread_mutex_unlock(&g_dl_lock);
    g_dl.fetch_add(1, std::memory_order_relaxed);
    sleep_us(3000);
  }
  return nullptr;
}

// ---- realloc storms.
__attribute__((noinline)) void grow_and_shrink(uint64_t seed) {
  uint64_t rng = seed;
  size_t n = 16;
  char* p = static_cast<char*>(malloc(n));
  LW_CHECK(p);
  memset(p, 0x11, n);
  size_t limit = (1u << 20) + lw_next(&rng) % (3u << 20);
  while (n < limit) {
    size_t m = n + 1 + lw_next(&rng) % (n / 2 + 64);
    char* q = static_cast<char*>(realloc(p, m));
    LW_CHECK(q);
    LW_CHECK(q[0] == 0x11 && q[n - 1] == 0x11);
    memset(q + n, 0x11, m - n);
    p = q;
    n = m;
    g_reallocs.fetch_add(1, std::memory_order_relaxed);
  }
  while (n > 64) {
    n /= 3;
    char* q = static_cast<char*>(realloc(p, n));
    LW_CHECK(q && q[n - 1] == 0x11);
    p = q;
    g_reallocs.fetch_add(1, std::memory_order_relaxed);
  }
  free(p);
}

__attribute__((noinline)) void small_storm(uint64_t seed) {
  uint64_t rng = seed;
  void* slot[256] = {};
  size_t size[256] = {};
  for (int i = 0; i < 20000; ++i) {
    uint64_t r = lw_next(&rng);
    int s = static_cast<int>(r % 256);
    size_t m = (r >> 8) % 3000;  // 0: realloc(p, 0) frees (glibc)
    if (m == 0) m = 1;
    void* q = realloc(slot[s], m);
    LW_CHECK(q);
    if (size[s]) LW_CHECK(static_cast<unsigned char*>(q)[0] == static_cast<unsigned char>(s));
    memset(q, s, m < 16 ? m : 16);
    slot[s] = q;
    size[s] = m;
    g_reallocs.fetch_add(1, std::memory_order_relaxed);
  }
  for (auto* p : slot) free(p);
}

void* realloc_loop(void*) {
  uint64_t n = 0;
  while (!g_stop.load()) {
    grow_and_shrink(++n);
    small_storm(n);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  g_plugin = argc > 2 ? argv[2] : nullptr;
  LW_CHECK(g_plugin);

  // Only the main thread takes SIGALRM: every other thread inherits a mask
  // that blocks it (fork children inherit the forker's, and no timer).
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, nullptr);
  pthread_t threads[4];
  void* (*fns[4])(void*) = {spawner, forker, dl_loop, realloc_loop};
  for (int i = 0; i < 4; ++i) LW_CHECK(pthread_create(&threads[i], nullptr, fns[i], nullptr) == 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  LW_CHECK(sigaction(SIGALRM, &sa, nullptr) == 0);
  itimerval it{{0, 250}, {0, 250}};  // every 250 us: as fast as the kernel will deliver
  LW_CHECK(setitimer(ITIMER_REAL, &it, nullptr) == 0);
  pthread_sigmask(SIG_UNBLOCK, &alrm, nullptr);

  // The main thread's own work: a bounded working set, flagged.
  double end = now_s() + seconds;
  uint64_t rng = 42;
  void* slot[64] = {};
  size_t size[64] = {};
  uint64_t tag[64] = {};
  while (now_s() < end) {
    for (int i = 0; i < 200; ++i) {
      uint64_t r = lw_next(&rng);
      int s = static_cast<int>(r % 64);
      if (slot[s]) {
        LW_CHECK(lw_verify(slot[s], size[s], tag[s]));
        if (r & 0x100) {
          size_t m = size[s] + 1 + (r >> 20) % 5000;
          void* q = m_realloc(slot[s], m);
          LW_CHECK(q && lw_verify(q, size[s], tag[s]));
          m_free(q);
        } else {
          m_free(slot[s]);
        }
      }
      size[s] = 1 + (r >> 8) % 20000;
      tag[s] = r;
      slot[s] = m_malloc(size[s]);
      LW_CHECK(slot[s]);
      lw_fill(slot[s], size[s], r);
      g_main_ops.fetch_add(1, std::memory_order_relaxed);
    }
    sleep_us(1000);
  }

  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  pthread_sigmask(SIG_BLOCK, &alrm, nullptr);
  g_stop.store(true);
  for (auto& t : threads) pthread_join(t, nullptr);
  for (int s = 0; s < 64; ++s) {
    if (slot[s]) LW_CHECK(lw_verify(slot[s], size[s], tag[s]));
    free(slot[s]);
  }
  printf("soak ok threads=%ld forks=%ld dlopen=%ld signals=%ld skipped=%ld reallocs=%ld main_ops=%ld\n",
         g_threads.load(), g_forks.load(), g_dl.load(), g_signals.load(), g_skipped.load(), g_reallocs.load(),
         g_main_ops.load());
  return 0;
}
