/* A process that loses its /proc after start, as a sandboxing tool or a
 * daemon does: a private mount namespace, then an empty tmpfs over /proc;
 * or, given a directory, a chroot into it (haproxy, postfix, named), which
 * hides the dump directory too. Leaks from lost_proc_leak for a while, in
 * itself and in a fork child.
 * Usage: lost_proc [MILLISECONDS [CHROOT_DIR]]
 * Prints "proc hidden" once /proc/self is gone, and a checksum line.
 * Exit 3 when it may not make a mount namespace or chroot (the test skips). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "lw_check.h"

__attribute__((noinline)) void* lost_proc_leak(size_t n, uint64_t seed) {
  void* p = malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, seed);
  LW_ESCAPE(p);
  return p;
}

static uint64_t leak_for(long ms, uint64_t seed) {
  const double end = lw_now_s() + ms / 1000.0;
  uint64_t h = 0;
  do {
    void* p = lost_proc_leak(4096, lw_next(&seed));
    h = lw_hash(h, p, 8);
    struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, NULL);
  } while (lw_now_s() < end);
  return h;
}

int main(int argc, char** argv) {
  long ms = argc > 1 ? atol(argv[1]) : 2000;
  if (argc > 2) {
    if (chroot(argv[2]) != 0) {
      fprintf(stderr, "lost_proc: no chroot: %s\n", strerror(errno));
      return 3;
    }
    LW_CHECK(chdir("/") == 0);
  } else if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    fprintf(stderr, "lost_proc: no mount namespace: %s\n", strerror(errno));
    return 3;
  } else {
    LW_CHECK(mount("none", "/proc", "tmpfs", 0, NULL) == 0);
  }
  LW_CHECK(access("/proc/self", F_OK) != 0);
  printf("proc hidden\n");
  fflush(stdout);
  pid_t child = fork();
  LW_CHECK(child >= 0);
  uint64_t h = leak_for(ms, child == 0 ? 7 : 11);
  if (child == 0) _exit(0);
  int status = 0;
  LW_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  printf("lost_proc: checksum %llu\n", (unsigned long long)(h != 0));
  return 0;
}
