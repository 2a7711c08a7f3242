/* A server's shape when started as root: the master stays root, its
 * workers (fork children) drop to another user, and the workers leak
 * (nginx, Apache httpd, the official images of both, run so).
 * Usage: drop_privileges UID [WORKERS [MILLISECONDS]]
 * Exit 3 when it may not change user (not root: the test skips). */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sys/wait.h>

#include "lw_check.h"

__attribute__((noinline)) void* worker_leak(size_t n, uint64_t seed) {
  void* p = malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, seed);
  LW_ESCAPE(p);
  return p;
}

static void work(long ms, uint64_t seed) {
  const double end = lw_now_s() + ms / 1000.0;
  do {
    worker_leak(2048, lw_next(&seed));
    struct timespec pause = {0, 1000 * 1000};
    nanosleep(&pause, NULL);
  } while (lw_now_s() < end);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  uid_t uid = (uid_t)atol(argv[1]);
  int workers = argc > 2 ? atoi(argv[2]) : 2;
  long ms = argc > 3 ? atol(argv[3]) : 1500;
  if (geteuid() != 0) {
    fprintf(stderr, "drop_privileges: not root\n");
    return 3;
  }
  void* before = malloc(64); /* the master allocates as root first: the shim starts (and dumps) as root */
  LW_ESCAPE(before);
  for (int i = 0; i < workers; ++i) {
    pid_t pid = fork();
    LW_CHECK(pid >= 0);
    if (pid == 0) {
      LW_CHECK(setgroups(0, NULL) == 0 && setresgid(uid, uid, uid) == 0 && setresuid(uid, uid, uid) == 0);
      work(ms, (uint64_t)i + 1);
      exit(0);
    }
  }
  int ok = 0;
  for (int i = 0; i < workers; ++i) {
    int status;
    if (wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
  }
  printf("drop_privileges: %d of %d workers ok\n", ok, workers);
  return ok == workers ? 0 : 1;
}
