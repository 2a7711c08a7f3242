/* Starts one idle thread at load time and does nothing else. Preloaded
 * beside the bare interposer it shows the price of merely having a second
 * thread: glibc's malloc stops taking its single-thread shortcuts (arena
 * lock on every realloc and every malloc/free the tcache does not serve),
 * which libleakwatch.so pays because of its writer thread. */
#include <pthread.h>
#include <unistd.h>

static void* idle(void* arg) {
  for (;;) pause();
  return arg;
}

__attribute__((constructor)) static void start_idle_thread(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, idle, NULL) == 0) pthread_detach(t);
}
