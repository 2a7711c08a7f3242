/* A host under RLIMIT_AS (ulimit -v): leaks LEAK_MIB MiB in 1 KiB blocks
 * from 64 call sites, then (when DUMPS > 0) keeps working until the shim
 * has written that many dumps into $LEAKWATCH_DIR, then measures how much
 * address space is still free for it: 1 MiB writable mappings (never
 * touched) until the kernel refuses (all given back after).
 * Usage: as_room LEAK_MIB DUMPS
 * Prints "room_mib=R peak_kib=P" (P: VmPeak before the probe). */
#include <dirent.h>
#include <sys/mman.h>

#include "lw_check.h"

#define SITE(k) \
  __attribute__((noinline)) static void* site_##k(size_t n) { void* p = malloc(n); LW_CHECK(p); memset(p, k, n); LW_ESCAPE(p); return p; }
#define S8(a) SITE(a##0) SITE(a##1) SITE(a##2) SITE(a##3) SITE(a##4) SITE(a##5) SITE(a##6) SITE(a##7)
S8(1) S8(2) S8(3) S8(4) S8(5) S8(6) S8(7) S8(8)
#define P8(a) site_##a##0, site_##a##1, site_##a##2, site_##a##3, site_##a##4, site_##a##5, site_##a##6, site_##a##7
static void* (*const sites[64])(size_t) = {P8(1), P8(2), P8(3), P8(4), P8(5), P8(6), P8(7), P8(8)};

static int count_dumps(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  for (struct dirent* e; (e = readdir(d));) n += e->d_name[0] != '.' && strstr(e->d_name, ".lwdump") != NULL;
  closedir(d);
  return n;
}

static long vm_peak_kib(void) {
  FILE* f = fopen("/proc/self/status", "r");
  LW_CHECK(f);
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmPeak:", 7) == 0) kib = atol(line + 7);
  fclose(f);
  return kib;
}

int main(int argc, char** argv) {
  LW_CHECK(argc == 3);
  const long leak_mib = atol(argv[1]), dumps = atol(argv[2]);
  for (long i = 0; i < leak_mib * 1024; ++i) sites[i % 64](1000);
  if (dumps > 0) {
    const char* dir = getenv("LEAKWATCH_DIR");
    LW_CHECK(dir);
    const double deadline = lw_now_s() + 60;
    uint64_t seed = 7;
    while (count_dumps(dir) < dumps) {
      LW_CHECK(lw_now_s() < deadline);
      for (int i = 0; i < 100; ++i) {
        void* p = malloc(64 + lw_next(&seed) % 4000);
        LW_CHECK(p);
        LW_ESCAPE(p);
        free(p);
      }
    }
  }
  const long peak = vm_peak_kib();
  static void* held[1 << 16];
  long n = 0;
  while (n < (1 << 16)) {
    /* Writable and private: counted by RLIMIT_DATA as well as RLIMIT_AS. */
    void* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) break;
    held[n++] = p;
  }
  for (long i = 0; i < n; ++i) munmap(held[i], 1 << 20);
  printf("room_mib=%ld peak_kib=%ld\n", n, peak);
  return 0;
}
