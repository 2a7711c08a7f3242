/* Built with RUNPATH $ORIGIN/sub: opens a library by bare name, which only
 * its own search path finds (dlopen takes the search path from its caller,
 * by return address: the call must not be a tail call). */
#include <dlfcn.h>

void* loader_open(const char* name, int deepbind) {
  void* h = dlopen(name, RTLD_NOW | (deepbind ? RTLD_DEEPBIND : 0));
  __asm__ volatile("" : : "r"(h) : "memory");  /* keeps this frame the caller */
  return h;
}
