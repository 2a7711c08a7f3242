/* Loads LOADER (libs/deep_loader.c, by path), which opens "libdeep.so" by
 * bare name through its own RUNPATH, with RTLD_DEEPBIND or without. Then
 * hands the library 200 blocks of 3000 bytes allocated here to free, and
 * lets it keep 100 blocks of 5000 bytes of its own. Prints "ready" and
 * waits for stdin to close (each read is a tick: 64 KiB allocated and freed).
 * Usage: deepbind_host LOADER deepbind|plain */
#include <dlfcn.h>
#include <unistd.h>

#include "lw_check.h"

__attribute__((noinline)) static void* host_alloc(size_t n) {
  void* p = malloc(n);
  LW_CHECK(p);
  memset(p, 0x11, n);
  LW_ESCAPE(p);
  return p;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 3);
  void* loader = dlopen(argv[1], RTLD_NOW);
  if (!loader) {
    fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
    return 2;
  }
  void* (*open_lib)(const char*, int) = (void* (*)(const char*, int))dlsym(loader, "loader_open");
  LW_CHECK(open_lib);
  void* lib = open_lib("libdeep.so", !strcmp(argv[2], "deepbind"));
  if (!lib) {
    fprintf(stderr, "loader_open libdeep.so: %s\n", dlerror());
    return 3;
  }
  void (*deep_free)(void*) = (void (*)(void*))dlsym(lib, "deep_free");
  int (*deep_keep)(int, size_t) = (int (*)(int, size_t))dlsym(lib, "deep_keep");
  LW_CHECK(deep_free && deep_keep);
  for (int i = 0; i < 200; ++i) deep_free(host_alloc(3000));
  printf("kept %d\n", deep_keep(100, 5000));
  printf("ready\n");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
    void* t = malloc(65536);
    LW_ESCAPE(t);
    free(t);
  }
  return 0;
}
