/* dlopens a plugin (built by the test), runs it, prints "ready", then waits
 * for stdin to close (the test watches for a periodic dump meanwhile; each
 * read allocates and frees 64 KiB, a tick that lets the shim write it).
 * Usage: dlopen_host PLUGIN.so stay|close
 *   close: dlclose the plugin before exiting (its leaked blocks stay). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lw_check.h"

int main(int argc, char** argv) {
  LW_CHECK(argc == 3);
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "dlopen failed: %s\n", dlerror());
    return 2;
  }
  unsigned long long (*run)(int) = (unsigned long long (*)(int))dlsym(h, "plugin_run");
  LW_CHECK(run);
  printf("plugin checksum %016llx\n", run(48));
  printf("ready\n");
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
    void* t = malloc(65536);
    LW_CHECK(t);
    LW_ESCAPE(t);
    free(t);
  }
  if (!strcmp(argv[2], "close")) LW_CHECK(dlclose(h) == 0);
  printf("done\n");
  return 0;
}
