/* SIGALRM at a high rate (setitimer) while the main thread and a second
 * thread allocate; the handler itself allocates, grows and frees.
 * glibc's malloc is not async-signal-safe, so the program keeps it safe
 * itself: each thread raises a flag around its own allocator calls, and the
 * handler only allocates when the interrupted thread was not inside one
 * (that is what a careful real program does). The shim must add no
 * deadlock or crash: its slow path (stack capture, tables) runs in the
 * handler, on top of whatever the thread was doing outside malloc.
 * Usage: signal_alloc ITERATIONS. Prints a checksum of the threads' work
 * (not of the handler's, whose count depends on timing). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>

#include "lw_check.h"

static __thread volatile sig_atomic_t t_in_alloc;
static atomic_long g_handled, g_skipped;

__attribute__((noinline)) static void* handler_alloc(size_t n) {
  void* p = malloc(n);
  LW_ESCAPE(p);
  return p;
}

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  if (t_in_alloc) {
    atomic_fetch_add_explicit(&g_skipped, 1, memory_order_relaxed);
    errno = saved;
    return;
  }
  char* p = handler_alloc(64 + (size_t)(atomic_load_explicit(&g_handled, memory_order_relaxed) % 3000));
  if (p) {
    memset(p, 1, 64);
    char* q = realloc(p, 8000);
    if (q) p = q;
    free(p);
  }
  void* c = calloc(3, 100);
  free(c);
  atomic_fetch_add_explicit(&g_handled, 1, memory_order_relaxed);
  errno = saved;
}

/* The threads' allocator calls, flagged. */
static void* f_malloc(size_t n) {
  t_in_alloc = 1;
  void* p = malloc(n);
  t_in_alloc = 0;
  return p;
}
static void* f_realloc(void* p, size_t n) {
  t_in_alloc = 1;
  void* q = realloc(p, n);
  t_in_alloc = 0;
  return q;
}
static void f_free(void* p) {
  t_in_alloc = 1;
  free(p);
  t_in_alloc = 0;
}

static uint64_t work(uint64_t seed, long iters) {
  void* slot[64] = {0};
  size_t size[64] = {0};
  uint64_t rng = seed, h = 0;
  for (long i = 0; i < iters; ++i) {
    uint64_t r = lw_next(&rng);
    int s = (int)(r % 64);
    if (slot[s]) {
      LW_CHECK(lw_verify(slot[s], size[s], (uint64_t)s));
      h = lw_mix(h, size[s]);
      if (r & 0x100) {
        void* g = f_realloc(slot[s], size[s] + 100);
        LW_CHECK(g && lw_verify(g, size[s], (uint64_t)s));
        f_free(g);
      } else {
        f_free(slot[s]);
      }
    }
    size[s] = 1 + (r >> 12) % ((r & 0x200) ? 20000 : 500);
    slot[s] = f_malloc(size[s]);
    LW_CHECK(slot[s]);
    lw_fill(slot[s], size[s], (uint64_t)s);
  }
  for (int s = 0; s < 64; ++s) f_free(slot[s]);
  return h;
}

static long g_iters;
static uint64_t g_thread_sum;
static void* thread_main(void* arg) {
  (void)arg;
  g_thread_sum = work(2, g_iters);
  t_in_alloc = 1;  /* thread exit frees (TLS, tcache): no handler allocations */
  return NULL;
}

int main(int argc, char** argv) {
  g_iters = argc > 1 ? atol(argv[1]) : 150000;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  LW_CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
  pthread_t th;
  t_in_alloc = 1;  /* pthread_create allocates */
  LW_CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0);
  t_in_alloc = 0;
  struct itimerval it = {{0, 200}, {0, 200}};  /* every 200 us */
  LW_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
  uint64_t main_sum = work(1, g_iters);
  t_in_alloc = 1;  /* no handler allocations from here on */
  LW_CHECK(pthread_join(th, NULL) == 0);
  struct itimerval off = {{0, 0}, {0, 0}};
  LW_CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
  /* The handler must have run, and allocated, many times. */
  LW_CHECK(atomic_load(&g_handled) > 10);
  printf("signal_alloc main %016llx thread %016llx\n", (unsigned long long)main_sum,
         (unsigned long long)g_thread_sum);
  return 0;
}
