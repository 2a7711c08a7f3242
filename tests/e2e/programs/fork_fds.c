/* fork() while other threads hold the shim's descriptors open: one thread
 * dlopens and dlcloses a library and then allocates (so the shim rereads
 * /proc/self/maps to rebuild its list of loaded objects), another keeps
 * allocating from many call stacks (so dumps, short-interval, are written
 * often), and the main thread forks children. Each child looks at its
 * descriptors before doing anything else: one naming a /proc file, a dump
 * or a pipe was the shim's, inherited from a thread the child does not
 * have, and would stay open for the child's whole life.
 * Usage: fork_fds FORKS PLUGIN.so
 * Each child also checks that two descriptors of the host's own, of the
 * same kinds, are still open.
 * Prints "forks N leaked K lost L" (L: children that lost one of the
 * host's) and what each leaked descriptor named. The dlopen thread and fork never overlap (glibc's dlclose holds a
 * lock fork does not reset). */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "lw_check.h"

static atomic_int g_stop;
static pthread_mutex_t g_dl_lock = PTHREAD_MUTEX_INITIALIZER;
static const char* g_plugin;

static int shim_like(const char* target) {
  return strncmp(target, "/proc/", 6) == 0 || strstr(target, ".lwdump") != NULL || strncmp(target, "pipe:", 5) == 0;
}

static char g_inherited[1024];  /* open before the threads started: not the shim's */

/* Counts the descriptors opened since the start that look like the
 * shim's; copies the first one's target to first. No allocation: the
 * child's scan must not make the child's own shim open anything. */
static int count_shim_fds(char* first, size_t cap, int host_a, int host_b) {
  int n = 0;
  for (int fd = 3; fd < 1024; ++fd) {
    if (g_inherited[fd] || fd == host_a || fd == host_b) continue;
    char path[64], target[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    if (!shim_like(target)) continue;
    if (n++ == 0) snprintf(first, cap, "%s", target);
  }
  return n;
}

__attribute__((noinline)) static uint64_t alloc_at(int depth, uint64_t r) {
  if (depth <= 0) {
    size_t n = 16 + r % 2000;
    char* volatile p = malloc(n);
    LW_CHECK(p);
    p[0] = (char)r;
    uint64_t h = (unsigned char)p[0];
    free(p);
    return h;
  }
  return alloc_at(depth - 1, r * 31 + 7) + (uint64_t)depth;
}

static void* allocator(void* arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg, h = 0;
  while (!atomic_load(&g_stop)) h += alloc_at((int)(lw_next(&rng) % 24), lw_next(&rng));
  return (void*)(uintptr_t)h;
}

static void* reloader(void* arg) {
  (void)arg;
  uint64_t h = 0;
  while (!atomic_load(&g_stop)) {
    pthread_mutex_lock(&g_dl_lock);
    void* lib = dlopen(g_plugin, RTLD_NOW);
    LW_CHECK(lib);
    dlclose(lib);
    pthread_mutex_unlock(&g_dl_lock);
    h += alloc_at(2, h);  // the objects changed: this stack's capture rebuilds the list
  }
  return (void*)(uintptr_t)h;
}

int main(int argc, char** argv) {
  long forks = argc > 1 ? atol(argv[1]) : 300;
  g_plugin = argc > 2 ? argv[2] : NULL;
  LW_CHECK(g_plugin);
  for (int fd = 3; fd < 1024; ++fd) g_inherited[fd] = fcntl(fd, F_GETFD) != -1;
  pthread_t a, r;
  LW_CHECK(pthread_create(&a, NULL, allocator, (void*)1) == 0);
  LW_CHECK(pthread_create(&r, NULL, reloader, NULL) == 0);
  long leaked = 0, lost = 0;
  for (long i = 0; i < forks; ++i) {
    /* The host's own descriptors, of the same kinds as the shim's: a child
     * must keep them. */
    int host_a = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    int host_b = open(g_plugin, O_RDONLY | O_CLOEXEC);
    LW_CHECK(host_a >= 0 && host_b >= 0);
    pthread_mutex_lock(&g_dl_lock);
    pid_t pid = fork();
    if (pid == 0) {
      if (fcntl(host_a, F_GETFD) == -1 || fcntl(host_b, F_GETFD) == -1) {
        static const char msg[] = "child lost a descriptor of the host\n";
        write(1, msg, sizeof msg - 1);
        _exit(101);
      }
      char seen[512] = "";
      int n = count_shim_fds(seen, sizeof seen, host_a, host_b);
      if (n) {
        char line[600];
        int len = snprintf(line, sizeof line, "child %d kept %d: %s\n", (int)getpid(), n, seen);
        write(1, line, (size_t)len);
      }
      _exit(n > 100 ? 100 : n);
    }
    pthread_mutex_unlock(&g_dl_lock);
    LW_CHECK(pid > 0);
    int status;
    LW_CHECK(waitpid(pid, &status, 0) == pid);
    LW_CHECK(WIFEXITED(status));
    close(host_a);
    close(host_b);
    if (WEXITSTATUS(status) == 101) ++lost;
    else leaked += WEXITSTATUS(status) > 0;
    usleep(1000 + (i % 7) * 300);  /* lets the threads get into the shim between forks */
  }
  atomic_store(&g_stop, 1);
  pthread_join(a, NULL);
  pthread_join(r, NULL);
  printf("forks %ld leaked %ld lost %ld\n", forks, leaked, lost);
  return 0;
}
