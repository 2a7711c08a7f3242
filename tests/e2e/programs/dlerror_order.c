// dlerror() after failed and successful dlopens, as the host sees it: the
// shim's own question to the loader (is this object loaded already?) must
// leave no trace in it. Prints what dlopen and dlerror return.
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
  void* h = dlopen("liblw-missing-1.so", RTLD_NOW);
  printf("1 %d %s\n", h != NULL, dlerror());
  h = dlopen("liblw-missing-2.so", RTLD_NOW);
  void* g = dlopen("libc.so.6", RTLD_NOW);  // loaded: succeeds
  printf("2 %d %d %s\n", h != NULL, g != NULL, dlerror());
  printf("3 %s\n", dlerror());
  h = dlopen("/nonexistent/liblw-missing-3.so", RTLD_LAZY);
  printf("4 %d %s\n", h != NULL, dlerror());
  g = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  printf("5 %d %s\n", g != NULL, dlerror());
  return 0;
}
