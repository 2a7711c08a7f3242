#include "shim/sample/sampler.h"

#include <cmath>
#include <ctime>
#include <sys/syscall.h>
#include <unistd.h>

namespace leakwatch::shim {
namespace {

unsigned long long next_random(unsigned long long* s) {
  // xorshift64*: tiny, fast, good enough for sampling intervals.
  unsigned long long x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

unsigned long long seed_for_thread() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long s = static_cast<unsigned long long>(ts.tv_nsec) * 0x9E3779B97F4A7C15ULL;
  s ^= static_cast<unsigned long long>(syscall(SYS_gettid)) << 32;
  s ^= reinterpret_cast<uintptr_t>(&t_state);
  s ^= static_cast<unsigned long long>(ts.tv_sec);
  return s ? s : 0x1234567ULL;
}

}  // namespace

long long sample_draw(unsigned long long* state, uint64_t mean) {
  if (mean <= 1) return 0;
  // u in (0, 1]: never take log(0).
  double u = (static_cast<double>(next_random(state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double v = -std::log(u) * static_cast<double>(mean);
  if (v > 4e18) v = 4e18;
  return static_cast<long long>(v) + 1;
}

void sample_arm(long long bytes) {
  ThreadState& t = t_state;
  long long w = bytes < kCheckWindow ? bytes : kCheckWindow;
  t.countdown = w;
  t.pending = bytes - w;
}

bool sample_slow(std::size_t n, uint64_t mean) {
  ThreadState& t = t_state;
  const long long charged = static_cast<long long>(n & 0x3fffffffffffffffULL);
  if (!t.initialized) {
    // First allocation of this thread: it started with countdown 0, so
    // start a fresh process and charge this allocation to it.
    t.initialized = 1;
    t.rng = seed_for_thread();
    sample_arm(sample_draw(&t.rng, mean));
  }
  t.countdown -= charged;
  if (t.countdown > 0) return false;
  // countdown <= 0: this allocation reached the end of the window; the
  // sample point itself lies `pending` bytes past the window's end.
  long long left = t.pending + t.countdown;
  if (left > 0) {
    sample_arm(left);
    return false;
  }
  sample_arm(sample_draw(&t.rng, mean));
  return mean <= 1 || n > 0;
}

bool sample_mapping(std::size_t n, uint64_t mean) {
  if (mean <= 1) return true;
  ThreadState& t = t_state;
  if (!t.rng) t.rng = seed_for_thread();
  double u = static_cast<double>(next_random(&t.rng) >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
  return u < -std::expm1(-static_cast<double>(n) / static_cast<double>(mean));
}

Weight sample_weight(std::size_t n, uint64_t mean) {
  if (mean <= 1) return {static_cast<double>(n), 1.0};
  double p = -std::expm1(-static_cast<double>(n) / static_cast<double>(mean));
  if (p <= 0) return {0, 0};
  return {static_cast<double>(n) / p, 1.0 / p};
}

}  // namespace leakwatch::shim
