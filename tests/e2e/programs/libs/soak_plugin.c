/* The plugin the soak tests dlopen and dlclose over and over: it allocates
 * in a constructor, in its work function and frees in a destructor, so
 * the unwinder keeps meeting code that comes and goes. */
#include <stdlib.h>
#include <string.h>
static void* keep;
__attribute__((constructor)) static void soak_plugin_init(void) { keep = malloc(3000); memset(keep, 1, 3000); }
__attribute__((destructor)) static void soak_plugin_fini(void) { free(keep); }
unsigned long soak_plugin_work(unsigned long seed) {
  unsigned long h = seed | 1;
  for (int i = 0; i < 50; ++i) {
    size_t n = 16 + (h >> 7) % 5000;
    unsigned char* p = malloc(n);
    memset(p, (int)h, n);
    h = h * 6364136223846793005UL + p[n / 2] + 1;
    free(p);
  }
  return h | 1;
}
