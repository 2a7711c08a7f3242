/* A daemon that closes stderr and opens a data file, which takes fd 2
 * (the lowest free descriptor), then works (allocating, so the shim runs
 * its checkpoints and dumps). MODE "data": the file is opened O_RDWR, as a
 * program opens its data; "log": O_APPEND, as a program reopens stderr to
 * its log. Usage: stderr_reuse MODE PATH ROUNDS
 * Writes "DATA\n" at the start of the file and prints "ok" on stdout. */
#include <fcntl.h>

#include "lw_check.h"

__attribute__((noinline)) static void* work(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 1, 64);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 4);
  const int append = strcmp(argv[1], "log") == 0;
  LW_CHECK(close(2) == 0);
  int fd = open(argv[2], O_CREAT | O_TRUNC | (append ? O_WRONLY | O_APPEND : O_RDWR), 0600);
  LW_CHECK(fd == 2);
  LW_CHECK(write(fd, "DATA\n", 5) == 5);
  const long rounds = atol(argv[3]);
  const double until = lw_now_s() + 30;
  for (long i = 0; i < rounds && lw_now_s() < until; ++i) {
    void* keep = work(4096 + (size_t)(i % 64) * 1024);
    if (i % 2) free(keep);
  }
  printf("ok\n");
  return 0;
}
