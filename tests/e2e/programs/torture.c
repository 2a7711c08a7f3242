/* Everything a host may do to a preloaded allocator shim, at once, for a
 * short while, then an ending chosen by the seed:
 *   - worker threads allocate, grow and shrink with realloc, calloc and
 *     posix_memalign, and free;
 *   - they fork (the child allocates, maybe from a thread it starts, and
 *     ends with _exit);
 *   - they dlopen and dlclose a plugin, with and without RTLD_DEEPBIND,
 *     and call into it;
 *   - they start short threads that end with pthread_exit;
 *   - SIGALRM lands every 300 us, anywhere (in the shim, in libc, in the
 *     unwinder, in a dump); when its thread is in its own computation (not
 *     inside libc, which may hold the allocator's locks: glibc's
 *     allocator is not async-signal-safe, so a careful program does the
 *     same) the handler allocates, reallocs and frees, or forks;
 *   - the run ends by exit(3) or _exit(4) from a worker while the others
 *     run on, by main's pthread_exit with the last worker returning (0),
 *     or by main returning 5.
 * Usage: torture PLUGIN.so SEED MILLISECONDS
 * Prints one line of counts from the thread that ends the run (to stdout,
 * flushed, so it survives _exit). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lw_check.h"

enum { kWorkers = 4, kSlots = 256 };
enum Ending { kExitFromWorker, kUnderscoreExitFromWorker, kMainPthreadExit, kMainReturns, kEndings };

static const char* g_plugin;
static uint64_t g_seed;
static long g_run_ns;
static int g_ending;
static atomic_long g_ops, g_forks, g_dlopens, g_signals, g_threads, g_done;
static atomic_int g_ender_claimed;
static __thread volatile sig_atomic_t t_calm;  /* in its own code, outside libc */

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void print_counts(const char* how) {
  printf("%s ops=%ld forks=%ld dlopens=%ld signals=%ld threads=%ld\n", how, atomic_load(&g_ops), atomic_load(&g_forks),
         atomic_load(&g_dlopens), atomic_load(&g_signals), atomic_load(&g_threads));
  fflush(stdout);
}

#define CALM(stmt)  \
  do {              \
    t_calm = 1;     \
    stmt;           \
    t_calm = 0;     \
  } while (0)

__attribute__((noinline)) static void* torture_alloc(size_t n) { return malloc(n); }

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  atomic_fetch_add(&g_signals, 1);
  if (t_calm) {
    unsigned long k = (unsigned long)atomic_load(&g_signals);
    if (k % 97 == 0) {
      pid_t pid = fork();
      if (pid == 0) _exit(0);
      if (pid > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        atomic_fetch_add(&g_forks, 1);
      }
    } else {
      char* p = malloc(32 + k % 3000);
      if (p) {
        p[0] = 1;
        char* q = realloc(p, 64 + k % 9000);
        free(q ? q : p);
      }
    }
  }
  errno = saved;
}

static void* short_thread(void* arg) {
  void* p = torture_alloc(100 + (size_t)(uintptr_t)arg % 4000);
  LW_ESCAPE(p);
  free(p);
  atomic_fetch_add(&g_threads, 1);
  pthread_exit(NULL);
}

// A child of a multi-threaded process may only use async-signal-safe
// functions; glibc keeps malloc and thread creation working there too, but
// not exit(): a lock another thread held at the fork (dlclose's
// __cxa_finalize holds the atexit list lock) stays held in the child.
static void* child_thread(void* arg) {
  void* p = torture_alloc(100 + (size_t)(uintptr_t)arg % 4000);
  LW_ESCAPE(p);
  free(p);
  return NULL;
}

static void child_body(uint64_t seed) {
  for (int i = 0; i < 50; ++i) {
    void* p = torture_alloc(16 + lw_next(&seed) % 8000);
    LW_ESCAPE(p);
    if (i % 2) free(p);
  }
  if (lw_next(&seed) % 2) {
    pthread_t t;  /* a thread of the child's own, allocating (it returns: pthread_exit */
    /* would load libgcc_s with dlopen, unsafe in a child of a multi-threaded process) */
    if (pthread_create(&t, NULL, child_thread, (void*)1) == 0) pthread_join(t, NULL);
  }
  _exit(0);
}

static void do_fork(uint64_t* seed) {
  pid_t pid = fork();
  LW_CHECK(pid >= 0);
  if (pid == 0) child_body(lw_next(seed));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "fork child ended with status %#x\n", status);
    abort();
  }
  atomic_fetch_add(&g_forks, 1);
}

static void do_plugin(uint64_t* seed) {
  int deep = (int)(lw_next(seed) % 2);
  void* h = dlopen(g_plugin, RTLD_NOW | RTLD_LOCAL | (deep ? RTLD_DEEPBIND : 0));
  LW_CHECK(h);
  unsigned long (*work)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(h, "soak_plugin_work");
  LW_CHECK(work);
  LW_ESCAPE(work(lw_next(seed)));
  LW_CHECK(dlclose(h) == 0);
  atomic_fetch_add(&g_dlopens, 1);
}

static void end_run_from_worker(void) {
  if (atomic_exchange(&g_ender_claimed, 1)) {
    for (;;) pause();  /* the others run on (in signal handlers) until the exit */
  }
  if (g_ending == kExitFromWorker) {
    print_counts("exit");
    exit(3);
  }
  print_counts("_exit");
  _exit(4);
}

static void* worker(void* arg) {
  uint64_t seed = g_seed ^ (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL;
  void* slots[kSlots] = {0};
  size_t sizes[kSlots] = {0};
  long deadline = now_ns() + g_run_ns;
  while (now_ns() < deadline) {
    uint64_t r = lw_next(&seed);
    int s = (int)(r % kSlots);
    switch ((r >> 8) % 64) {
      case 0: do_fork(&seed); break;
      case 1: do_plugin(&seed); break;
      case 2: {
        pthread_t t;
        if (pthread_create(&t, NULL, short_thread, (void*)(uintptr_t)r) == 0) pthread_join(t, NULL);
        break;
      }
      default: {
        size_t n = 1 + (size_t)((r >> 16) % ((r >> 40) % 7 == 0 ? 2000000 : 4000));
        if (!slots[s]) {
          int how = (int)((r >> 24) % 3);
          if (how == 0) slots[s] = torture_alloc(n);
          else if (how == 1) slots[s] = calloc(1, n);
          else if (posix_memalign(&slots[s], 64, n) != 0) slots[s] = NULL;
          if (slots[s]) {
            CALM(lw_fill(slots[s], n < 4096 ? n : 4096, n));
            sizes[s] = n;
          }
        } else if ((r >> 32) % 3 == 0) {
          size_t m = (r >> 33) % 2 ? sizes[s] * 2 + 1 : sizes[s] / 4 + 1;  /* grow or shrink */
          void* q = realloc(slots[s], m);
          if (q) {
            size_t kept = m < sizes[s] ? m : sizes[s];
            int ok;
            CALM(ok = lw_verify(q, kept < 4096 ? kept : 4096, sizes[s]));
            LW_CHECK(ok);
            slots[s] = q;
            sizes[s] = m;
            CALM(lw_fill(q, m < 4096 ? m : 4096, m));
          }
        } else {
          int ok;
          CALM(ok = lw_verify(slots[s], sizes[s] < 4096 ? sizes[s] : 4096, sizes[s]));
          LW_CHECK(ok);
          free(slots[s]);
          slots[s] = NULL;
        }
      }
    }
    atomic_fetch_add(&g_ops, 1);
  }
  if (g_ending == kExitFromWorker || g_ending == kUnderscoreExitFromWorker) end_run_from_worker();
  for (int i = 0; i < kSlots; ++i) free(slots[i]);
  if (atomic_fetch_add(&g_done, 1) == kWorkers - 1 && g_ending == kMainPthreadExit) print_counts("pthread_exit");
  return NULL;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 4);
  g_plugin = argv[1];
  g_seed = strtoull(argv[2], NULL, 10);
  g_run_ns = atol(argv[3]) * 1000000L;
  g_ending = (int)(g_seed % kEndings);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  LW_CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
  struct itimerval it = {{0, 300}, {0, 300}};
  LW_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
  pthread_t t[kWorkers];
  for (int i = 0; i < kWorkers; ++i) LW_CHECK(pthread_create(&t[i], NULL, worker, (void*)(uintptr_t)(i + 1)) == 0);
  if (g_ending == kMainPthreadExit) pthread_exit(NULL);
  for (int i = 0; i < kWorkers; ++i) pthread_join(t[i], NULL);
  print_counts("return");
  return 5;
}
