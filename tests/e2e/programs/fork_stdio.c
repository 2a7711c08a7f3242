/* fork() from several threads while other threads use stdio: getline
 * (which reallocs while it holds its FILE's lock) and fflush(NULL) (which
 * holds stdio's list lock and takes each FILE's). glibc's fork takes the
 * list lock after running the atfork handlers: a handler that holds a lock
 * the hooks take would deadlock with a reader inside getline.
 * Usage: fork_stdio FORKS_PER_THREAD LINES_PER_READER */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lw_check.h"

enum { kForkers = 2, kReaders = 2, kFlushers = 1 };
static long g_forks, g_lines;
static atomic_int g_stop;

static void* forker(void* arg) {
  long n = *(long*)arg;
  for (long i = 0; i < n; ++i) {
    pid_t pid = fork();
    LW_CHECK(pid >= 0);
    if (pid == 0) {
      void* p = malloc(100 + (size_t)i % 1000);  /* the child allocates too */
      LW_ESCAPE(p);
      free(p);
      _exit(0);
    }
    int status;
    LW_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  return NULL;
}

static void* reader(void* arg) {
  long want = *(long*)arg, got = 0;
  FILE* f = tmpfile();
  LW_CHECK(f);
  for (int i = 0; i < 200; ++i) fprintf(f, "line %d %.*s\n", i, i * 7 % 600, "................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................");
  while (got < want) {
    rewind(f);
    char* line = NULL;  /* a fresh buffer every line: getline reallocs */
    size_t cap = 0;
    while (got < want && getline(&line, &cap, f) > 0) {
      ++got;
      free(line);
      line = NULL;
      cap = 0;
    }
    free(line);
  }
  fclose(f);
  __atomic_add_fetch(&g_lines, got, __ATOMIC_RELAXED);
  return NULL;
}

static void* flusher(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    fflush(NULL);
    void* p = malloc(4096);
    LW_ESCAPE(p);
    free(p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 3);
  long forks = atol(argv[1]), lines = atol(argv[2]);
  pthread_t f[kForkers], r[kReaders], fl[kFlushers];
  for (int i = 0; i < kFlushers; ++i) LW_CHECK(pthread_create(&fl[i], NULL, flusher, NULL) == 0);
  for (int i = 0; i < kReaders; ++i) LW_CHECK(pthread_create(&r[i], NULL, reader, &lines) == 0);
  for (int i = 0; i < kForkers; ++i) LW_CHECK(pthread_create(&f[i], NULL, forker, &forks) == 0);
  for (int i = 0; i < kForkers; ++i) pthread_join(f[i], NULL);
  for (int i = 0; i < kReaders; ++i) pthread_join(r[i], NULL);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kFlushers; ++i) pthread_join(fl[i], NULL);
  g_forks = forks * kForkers;
  printf("forks %ld lines %ld\n", g_forks, g_lines);
  return 0;
}
