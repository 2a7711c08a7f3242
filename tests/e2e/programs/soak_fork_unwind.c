/* fork() while other threads are in the middle of sampled allocations.
 * Threads allocate from many different call stacks, short-lived threads
 * allocate as soon as they start (an unwinder has no per-thread cache for
 * them yet), a thread allocates from a signal handler (unwinding through
 * a signal frame) and another dlopens and dlcloses a library (so an
 * unwinder's caches keep being flushed and it keeps looking up unwind
 * tables, under its own locks and the loader's), while the main thread
 * forks children that allocate (also from a thread they start) and exit. Without a profiler every child finishes at once. A child that
 * inherits a lock held by another thread at the instant of fork hangs.
 * Usage: soak_fork_unwind SECONDS PLUGIN.so
 * Prints "ok FORKS" when every child exited within 10 s; otherwise prints
 * "hung PID..." (those children are left running for the test to look at
 * and kill) and exits 3. The dlopen thread and fork never overlap (glibc's
 * dlclose holds a lock fork does not reset). */
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

static atomic_int g_stop;
static pthread_mutex_t g_dl_lock = PTHREAD_MUTEX_INITIALIZER;
static const char* g_plugin;

/* Recursion gives each depth its own call stack; the alternation between
 * two functions gives more distinct return addresses. */
__attribute__((noinline)) static uint64_t deep_b(int depth, uint64_t r);
__attribute__((noinline)) static uint64_t deep_a(int depth, uint64_t r) {
  if (depth <= 0) {
    size_t n = 1 + r % 4000;
    char* p = malloc(n);
    LW_CHECK(p);
    p[0] = (char)r;
    p[n - 1] = (char)(r >> 8);
    uint64_t h = (uint64_t)(unsigned char)p[0] + (unsigned char)p[n - 1];
    free(p);
    return h;
  }
  return deep_b(depth - 1, r * 31 + 7) + 1;
}
__attribute__((noinline)) static uint64_t deep_b(int depth, uint64_t r) {
  if (depth <= 0) {
    void* p = calloc(1, 1 + r % 3000);
    LW_CHECK(p);
    free(p);
    return 3;
  }
  return deep_a(depth - 1, r ^ 0x55) + 2;
}

static void* allocator(void* arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg, h = 0;
  while (!atomic_load(&g_stop)) {
    uint64_t r = lw_next(&rng);
    h += deep_a((int)(r % 24), r);
  }
  LW_ESCAPE(&h);
  return NULL;
}

static void* short_lived(void* arg) {
  uint64_t r = (uint64_t)(uintptr_t)arg, h = 0;
  for (int i = 0; i < 20; ++i) h += deep_a((int)(lw_next(&r) % 24), r);
  LW_ESCAPE(&h);
  return NULL;
}

static void* spawner(void* arg) {
  (void)arg;
  uint64_t n = 0;
  while (!atomic_load(&g_stop)) {
    pthread_t t[4];
    int started = 0;
    for (int i = 0; i < 4; ++i)
      if (pthread_create(&t[started], NULL, short_lived, (void*)(uintptr_t)++n) == 0) ++started;
    for (int i = 0; i < started; ++i) pthread_join(t[i], NULL);
  }
  return NULL;
}

/* The only thread that takes SIGALRM; it does nothing but wait, so its
 * handler may call malloc safely. */
static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  static uint64_t r = 1;
  deep_a((int)(lw_next(&r) % 12), r);
  errno = saved;
}

static void* signal_thread(void* arg) {
  (void)arg;
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
  while (!atomic_load(&g_stop)) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  pthread_sigmask(SIG_BLOCK, &alrm, NULL);
  return NULL;
}

static void* dl_loop(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    pthread_mutex_lock(&g_dl_lock);
    void* h = dlopen(g_plugin, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      fprintf(stderr, "dlopen %s: %s\n", g_plugin, dlerror());
      abort();
    }
    unsigned long (*work)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(h, "soak_plugin_work");
    LW_CHECK(work && work(7) != 0);
    LW_CHECK(dlclose(h) == 0);
    pthread_mutex_unlock(&g_dl_lock);
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  g_plugin = argc > 2 ? argv[2] : NULL;
  LW_CHECK(g_plugin);
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, NULL); /* inherited by every thread but signal_thread */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  LW_CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
  pthread_t t[6];
  for (int i = 0; i < 2; ++i) LW_CHECK(pthread_create(&t[i], NULL, allocator, (void*)(uintptr_t)(i + 1)) == 0);
  LW_CHECK(pthread_create(&t[2], NULL, dl_loop, NULL) == 0);
  LW_CHECK(pthread_create(&t[3], NULL, spawner, NULL) == 0);
  LW_CHECK(pthread_create(&t[4], NULL, signal_thread, NULL) == 0);
  struct itimerval it = {{0, 500}, {0, 500}};
  LW_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
  double end = lw_now_s() + seconds;
  long forks = 0;
  int hung = 0;
  while (lw_now_s() < end && !hung) {
    /* A batch of children at a time: more forks per second. */
    pid_t pids[8];
    pthread_mutex_lock(&g_dl_lock);
    for (int k = 0; k < 8; ++k) {
      pid_t pid = fork();
      LW_CHECK(pid >= 0);
      if (pid == 0) {
        /* The main thread and a thread started here: the unwinder has no
         * per-thread state for the latter yet. */
        pthread_t t;
        LW_CHECK(pthread_create(&t, NULL, short_lived, (void*)(uintptr_t)getpid()) == 0);
        uint64_t rng = (uint64_t)getpid(), h = 0;
        for (int i = 0; i < 300; ++i) {
          uint64_t r = lw_next(&rng);
          h += deep_a((int)(r % 24), r);
        }
        LW_ESCAPE(&h);
        LW_CHECK(pthread_join(t, NULL) == 0);
        exit(0);
      }
      pids[k] = pid;
    }
    pthread_mutex_unlock(&g_dl_lock);
    double limit = lw_now_s() + 10;
    for (int k = 0; k < 8; ++k) {
      int status = 0;
      pid_t got;
      while ((got = waitpid(pids[k], &status, WNOHANG)) == 0 && lw_now_s() < limit) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
      }
      if (got == 0) {
        printf("%s%d", hung ? " " : "hung ", (int)pids[k]);
        hung = 1;
        continue;
      }
      LW_CHECK(got == pids[k] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
      ++forks;
    }
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 5; ++i) pthread_join(t[i], NULL);
  if (hung) {
    printf("\n");
    return 3;
  }
  printf("ok %ld\n", forks);
  return 0;
}
