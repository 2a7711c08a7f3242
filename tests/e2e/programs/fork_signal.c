/* fork() from a signal handler, in a process with one thread of its own:
 * SIGVTALRM every 2 ms of main's CPU time (setitimer ITIMER_VIRTUAL, so
 * forking, which takes milliseconds here, cannot starve main) lands
 * anywhere -- in the shim's slow
 * path, in libc's allocator, in the unwinder -- and the handler forks; the
 * child _exits at once and the handler reaps it (fork, _exit and waitpid
 * are async-signal-safe). Meanwhile main allocates, grows and frees.
 * Usage: fork_signal ITERATIONS. Prints a checksum of main's work. */
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lw_check.h"

static volatile sig_atomic_t g_forks;

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  pid_t pid = fork();
  if (pid == 0) _exit(7);
  if (pid > 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 7) g_forks = g_forks + 1;
  }
  errno = saved;
}

__attribute__((noinline)) static void* main_alloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 2);
  long iters = atol(argv[1]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  LW_CHECK(sigaction(SIGVTALRM, &sa, NULL) == 0);
  struct itimerval it = {{0, 2000}, {0, 2000}};
  LW_CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL) == 0);
  uint64_t h = 0, seed = 42;
  void* keep[64] = {0};
  for (long i = 0; i < iters; ++i) {
    size_t n = 16 + (size_t)(lw_next(&seed) % 5000);
    char* p = main_alloc(n);
    lw_fill(p, n, (uint64_t)i);
    char* q = realloc(p, n * 2);
    LW_CHECK(q);
    LW_CHECK(lw_verify(q, n, (uint64_t)i));
    h = lw_mix(h, n);
    int slot = (int)(i % 64);
    free(keep[slot]);
    keep[slot] = q;
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_VIRTUAL, &off, NULL);
  for (int i = 0; i < 64; ++i) free(keep[i]);
  printf("sum %016llx forked %s\n", (unsigned long long)h, g_forks > 0 ? "yes" : "no");
  return 0;
}
