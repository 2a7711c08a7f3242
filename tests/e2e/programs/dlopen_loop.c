// A host that opens and closes already-loaded objects around every lookup
// (dlopen(NULL), by name, RTLD_NOLOAD), allocating between: nothing is loaded or
// unloaded, so the shim must not treat each call as a change of objects.
// Usage: dlopen_loop ITERATIONS
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  long iters = argc > 1 ? atol(argv[1]) : 20000;
  uint64_t sum = 0;
  for (long i = 0; i < iters; ++i) {
    void* self = dlopen(NULL, RTLD_LAZY);
    void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void* libc2 = dlopen("libc.so.6", RTLD_NOW);  // loaded already: only a reference more
    if (!self || !libc || !libc2) return 2;
    sum += dlsym(self, "main") != NULL;
    sum += dlsym(libc, "strlen") != NULL;
    sum += dlsym(libc2, "memcpy") != NULL;
    dlclose(libc2);
    dlclose(libc);
    dlclose(self);
    // volatile: the allocation and its use must stay.
    char* volatile p = malloc(4096 + (size_t)(i & 1023));
    memset(p, (int)i, 64);
    sum += (unsigned char)p[i & 63];
    free(p);
  }
  printf("sum %llu\n", (unsigned long long)sum);
  return 0;
}
