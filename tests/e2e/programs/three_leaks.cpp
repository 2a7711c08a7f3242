// Known truth for the growth analysis: three leaks at clearly different
// rates, among decoys that must not be called leaks.
//   leak_fast / leak_medium / leak_slow : never freed, steady by wall clock
//   fill_cache   : fills 6 MiB in the first 4 s, then holds (plateau)
//   make_spike   : 30 MiB allocated at 6 s, freed at 9 s (transient)
//   churn        : ~60 MB/s allocated and freed, at most 64 blocks live
//   keep_big     : 24 MiB allocated at start and kept (stable)
// Usage: three_leaks SECONDS. Prints each leak's true rate (bytes/s over
// the time it ran) so the test compares against measured truth.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};
std::vector<void*> g_sink[3];  // per leak thread: keeps leaked blocks reachable

// Each touches its block after malloc, so the call is not a tail call and
// the function keeps its own frame.
__attribute__((noinline)) void* leak_fast(size_t n) {
  void* p = std::malloc(n);
  std::memset(p, 1, n);
  return p;
}
__attribute__((noinline)) void* leak_medium(size_t n) {
  void* p = std::malloc(n);
  std::memset(p, 2, n);
  return p;
}
__attribute__((noinline)) void* leak_slow(size_t n) {
  void* p = std::malloc(n);
  std::memset(p, 3, n);
  return p;
}

// Allocates `rate` bytes/s in 10 ms steps, on absolute deadlines.
void leaker(int which, double rate, double* measured) {
  std::mt19937_64 rng(1234 + which);
  std::uniform_int_distribution<size_t> size(64, 2048);
  auto start = Clock::now();
  double owed = 0;
  size_t total = 0;
  auto next = start;
  while (!g_stop.load(std::memory_order_relaxed)) {
    next += std::chrono::milliseconds(10);
    owed += rate * 0.01;
    while (owed > 0) {
      size_t n = size(rng);
      void* p = which == 0 ? leak_fast(n) : which == 1 ? leak_medium(n) : leak_slow(n);
      g_sink[which].push_back(p);
      owed -= static_cast<double>(n);
      total += n;
    }
    std::this_thread::sleep_until(next);
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  *measured = static_cast<double>(total) / secs;
}

std::vector<void*> g_cache;
// ~4 s to fill, on absolute deadlines like the leakers: relative sleeps
// stretch on a loaded machine (the fill would then look like a leak).
__attribute__((noinline)) void fill_cache() {
  const auto start = Clock::now();
  for (int i = 0; i < 6 * 1024 && !g_stop; ++i) {
    void* p = std::malloc(1024);
    std::memset(p, 1, 1024);
    g_cache.push_back(p);
    std::this_thread::sleep_until(start + std::chrono::microseconds(650) * (i + 1));
  }
}

__attribute__((noinline)) std::vector<void*> make_spike() {
  std::vector<void*> v;
  for (int i = 0; i < 480; ++i) {
    void* p = std::malloc(65536);
    std::memset(p, 2, 65536);
    v.push_back(p);
  }
  return v;
}

__attribute__((noinline)) void* churn_block(size_t n) {
  char* p = static_cast<char*>(std::malloc(n));
  p[n - 1] = 0;
  return p;
}

void churn(unsigned* sum) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<size_t> size(256, 8192);
  void* ring[64] = {};
  unsigned i = 0;
  auto next = Clock::now();
  while (!g_stop.load(std::memory_order_relaxed)) {
    // ~600 KB per 10 ms = ~60 MB/s
    for (int k = 0; k < 140; ++k, ++i) {
      std::free(ring[i % 64]);
      size_t n = size(rng);
      char* p = static_cast<char*>(churn_block(n));
      p[0] = static_cast<char>(i);
      *sum += static_cast<unsigned char>(p[0]);
      ring[i % 64] = p;
    }
    next += std::chrono::milliseconds(10);
    std::this_thread::sleep_until(next);
  }
  for (void* p : ring) std::free(p);
}

__attribute__((noinline)) void* keep_big() {
  void* p = std::malloc(24u << 20);
  std::memset(p, 3, 24u << 20);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 20;
  void* big = keep_big();
  // Reserved up front, so the bookkeeping vectors are not growing sites.
  for (auto& v : g_sink) v.reserve(1 << 17);
  g_cache.reserve(6 * 1024);
  double rates[3] = {0, 0, 0};
  unsigned churn_sum = 0;
  std::thread t0(leaker, 0, 1000e3, &rates[0]);
  std::thread t1(leaker, 1, 400e3, &rates[1]);
  std::thread t2(leaker, 2, 150e3, &rates[2]);
  std::thread tc(fill_cache);
  std::thread tch(churn, &churn_sum);
  auto start = Clock::now();
  auto at = [&](double s) { std::this_thread::sleep_until(start + std::chrono::duration<double>(s)); };
  at(seconds * 0.3);
  auto spike = make_spike();
  at(seconds * 0.45);
  for (void* p : spike) std::free(p);
  at(seconds);
  g_stop = true;
  for (auto* t : {&t0, &t1, &t2, &tc, &tch}) t->join();
  std::printf("leak_fast %.0f\nleak_medium %.0f\nleak_slow %.0f\nchurn %u big %d\n", rates[0], rates[1], rates[2],
              churn_sum, static_cast<char*>(big)[100]);
  return 0;
}
