// 8 threads allocate, verify and free concurrently; three of them stop
// early (one returns, one calls pthread_exit, one exits while holding a
// thread_local container and a pthread key whose destructors free memory).
// Each thread leaks a few blocks from thread_leak(); the report must name it.
// Usage: threads [OPS_PER_THREAD [running]]. Prints one checksum per thread
// and a total. With "running", four more threads allocate and free without
// end and main returns while they still do: the process exits (and the
// shim writes its final dump) under their feet.
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "lw_check.h"

namespace {

constexpr int kThreads = 8;
constexpr int kSlots = 64;
pthread_key_t g_key;
uint64_t g_result[kThreads];
void* g_leaked[kThreads][16];

thread_local std::vector<std::string> t_names;  // destroyed at thread exit

extern "C" __attribute__((noinline)) void* thread_leak(size_t n, uint64_t seed) {
  void* p = std::malloc(n);
  LW_CHECK(p);
  lw_fill(p, n, seed);
  LW_ESCAPE(p);
  return p;
}

void key_destructor(void* p) {
  // Runs during thread exit: frees, and allocates once more.
  LW_CHECK(lw_verify(p, 200, 77));
  std::free(p);
  void* q = std::calloc(3, 100);
  LW_ESCAPE(q);
  std::free(q);
}

uint64_t work(int id, long ops) {
  uint64_t rng = 1000 + id, h = 0;
  void* slot[kSlots] = {};
  size_t size[kSlots] = {};
  uint64_t seed[kSlots] = {};
  long stop_at = ops;
  if (id == 5 || id == 6 || id == 7) stop_at = ops / 4;  // early exits
  if (id == 7) {
    void* p = std::malloc(200);
    lw_fill(p, 200, 77);
    pthread_setspecific(g_key, p);
    for (int i = 0; i < 50; ++i) t_names.push_back(std::string(40 + i, 'a' + (i % 26)));
  }
  for (long i = 0; i < stop_at; ++i) {
    uint64_t r = lw_next(&rng);
    int s = static_cast<int>(r % kSlots);
    if (slot[s]) {
      LW_CHECK(lw_verify(slot[s], size[s], seed[s]));
      h = lw_mix(h, size[s]);
      if ((r >> 8) % 5 == 0) {  // grow in place or move
        size_t n = size[s] * 2 + 1;
        void* q = std::realloc(slot[s], n);
        LW_CHECK(q);
        LW_CHECK(lw_verify(q, size[s], seed[s]));
        std::free(q);
      } else {
        std::free(slot[s]);
      }
      slot[s] = nullptr;
    }
    size_t n;
    switch ((r >> 16) % 16) {
      case 0: n = 65536 + (r >> 32) % 200000; break;  // crosses the mmap threshold at times
      case 1: case 2: n = 1024 + (r >> 32) % 8192; break;
      default: n = 1 + (r >> 32) % 512;
    }
    void* p = ((r >> 12) & 3) == 0 ? std::calloc(1, n) : std::malloc(n);
    LW_CHECK(p);
    if (((r >> 12) & 3) == 0) LW_CHECK(reinterpret_cast<unsigned char*>(p)[n - 1] == 0);
    seed[s] = r;
    size[s] = n;
    lw_fill(p, n, r);
    slot[s] = p;
    if (i % 5000 == 0 && i / 5000 < 16) g_leaked[id][i / 5000] = thread_leak(100 + id, r);
  }
  for (int s = 0; s < kSlots; ++s)
    if (slot[s]) {
      LW_CHECK(lw_verify(slot[s], size[s], seed[s]));
      std::free(slot[s]);
    }
  return lw_mix(h, static_cast<uint64_t>(stop_at));
}

void* thread_main(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg) & 0xff);
  long ops = reinterpret_cast<intptr_t>(arg) >> 8;
  g_result[id] = work(id, ops);
  if (id == 6) pthread_exit(nullptr);
  return nullptr;
}

void* run_forever(void* arg) {
  uint64_t rng = reinterpret_cast<uintptr_t>(arg);
  void* slot[16] = {};
  for (;;) {
    uint64_t r = lw_next(&rng);
    int s = static_cast<int>(r % 16);
    std::free(slot[s]);
    slot[s] = std::malloc(1 + (r >> 20) % 5000);
    LW_ESCAPE(slot[s]);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  long ops = argc > 1 ? std::atol(argv[1]) : 20000;
  LW_CHECK(pthread_key_create(&g_key, key_destructor) == 0);
  std::vector<pthread_t> th(kThreads);
  for (int i = 0; i < kThreads; ++i)
    LW_CHECK(pthread_create(&th[i], nullptr, thread_main, reinterpret_cast<void*>((intptr_t(ops) << 8) | i)) == 0);
  // The early ones are joined first, while the rest still run.
  for (int i : {5, 6, 7, 0, 1, 2, 3, 4}) LW_CHECK(pthread_join(th[i], nullptr) == 0);
  uint64_t total = 0;
  for (int i = 0; i < kThreads; ++i) {
    std::printf("thread %d checksum %016llx\n", i, static_cast<unsigned long long>(g_result[i]));
    total = lw_mix(total, g_result[i]);
  }
  std::printf("threads total %016llx\n", static_cast<unsigned long long>(total));
  if (argc > 2 && !std::strcmp(argv[2], "running")) {
    for (intptr_t i = 1; i <= 4; ++i) {
      pthread_t t;
      LW_CHECK(pthread_create(&t, nullptr, run_forever, reinterpret_cast<void*>(i)) == 0);
    }
    std::fflush(stdout);
  }
  return 0;
}
