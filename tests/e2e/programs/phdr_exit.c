/* A thread sits inside a dl_iterate_phdr callback (which holds the loader's
 * lock) for ever, while main() allocates and calls exit(0): the process
 * must exit at once, as it does without the shim, and leave its final dump.
 * Usage: phdr_exit */
#define _GNU_SOURCE  /* dl_iterate_phdr */
#include <link.h>
#include <pthread.h>
#include <unistd.h>

#include "lw_check.h"

static int g_ready[2], g_never[2];

static int stuck(struct dl_phdr_info* info, size_t size, void* data) {
  (void)info, (void)size, (void)data;
  char c = 1;
  LW_CHECK(write(g_ready[1], &c, 1) == 1);
  LW_CHECK(read(g_never[0], &c, 1) >= 0);  /* never written: blocks until exit */
  return 1;
}

static void* in_callback(void* arg) {
  (void)arg;
  dl_iterate_phdr(stuck, NULL);
  return NULL;
}

__attribute__((noinline)) static void* main_alloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 1, n);
  LW_ESCAPE(p);
  return p;
}

int main(void) {
  LW_CHECK(pipe(g_ready) == 0 && pipe(g_never) == 0);
  pthread_t t;
  LW_CHECK(pthread_create(&t, NULL, in_callback, NULL) == 0);
  char c;
  LW_CHECK(read(g_ready[0], &c, 1) == 1);
  /* 16 MB: at the default 512 KiB sampling, ~30 samples expected (the chance of none: e^-30) */
  for (int i = 0; i < 1000; ++i) main_alloc(16000 + (size_t)i);
  printf("exiting\n");
  exit(0);
}
