/* Processes whose last thread ends with pthread_exit. glibc then exits the
 * process with status 0 (atexit handlers run, stdio is flushed); a shim
 * thread left behind would keep it alive for ever.
 * Usage: pthread_exit_main MODE
 *   main    main() starts a worker and calls pthread_exit; the worker
 *           allocates, prints (unflushed) and returns.
 *   forked  a thread forks; in the child (whose only thread it is) it
 *           allocates, prints and calls pthread_exit; the parent waits for
 *           the child and prints how it ended.
 *   signal  main() calls pthread_exit; the worker prints "ready" and blocks
 *           in pause(): a SIGTERM sent by the test must end the process. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lw_check.h"

static uint64_t g_sum;

__attribute__((noinline)) static void* worker_alloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, n);
  LW_ESCAPE(p);
  return p;
}

static void work(const char* who) {
  for (int i = 0; i < 2000; ++i) {
    void* p = worker_alloc(64 + (size_t)(i % 700) * 16);
    g_sum = lw_mix(g_sum, (uint64_t)i);
    if (i % 3) free(p);
  }
  printf("%s done %016llx\n", who, (unsigned long long)g_sum);  /* left in the stdio buffer */
}

static void at_exit(void) { printf("atexit ran\n"); }

static void* worker(void* arg) {
  work((const char*)arg);
  return NULL;
}

static void* pause_worker(void* arg) {
  (void)arg;
  work("worker");
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
  return NULL;
}

static void* forking_thread(void* arg) {
  (void)arg;
  fflush(stdout);
  pid_t pid = fork();
  LW_CHECK(pid >= 0);
  if (pid == 0) {
    atexit(at_exit);
    work("child");
    pthread_exit(NULL);
  }
  int status = 0;
  LW_CHECK(waitpid(pid, &status, 0) == pid);
  printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return NULL;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 2);
  pthread_t t;
  if (!strcmp(argv[1], "main")) {
    atexit(at_exit);
    LW_CHECK(pthread_create(&t, NULL, worker, "worker") == 0);
    pthread_exit(NULL);
  }
  if (!strcmp(argv[1], "forked")) {
    LW_CHECK(pthread_create(&t, NULL, forking_thread, NULL) == 0);
    LW_CHECK(pthread_join(t, NULL) == 0);
    printf("parent done\n");
    return 0;
  }
  if (!strcmp(argv[1], "signal")) {
    LW_CHECK(pthread_create(&t, NULL, pause_worker, NULL) == 0);
    pthread_exit(NULL);
  }
  return 2;
}
