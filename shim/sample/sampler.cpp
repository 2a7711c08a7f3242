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
  // Every allocation sampled: the countdown stays 0 (sample_draw's answer
  // for such a mean), so nothing is charged or drawn.
  if (mean <= 1) return true;
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

// Blocks are mostly far smaller than S, where both directions have short
// series (Bernoulli numbers; the Taylor series of -log(1-u)) that agree
// with libm to ~1e-12, far below a float weight's precision: a sampled
// block that a program reallocs call after call then costs no libm call.
// 1/p = 1/(1 - e^-x) = 1/x + 1/2 + x/12 - x^3/720 + x^5/30240 - ...
constexpr double kSeriesLimit = 0.05;

double inclusion_count(double exposed_bytes, uint64_t mean) {
  if (mean <= 1) return 1.0;
  const double x = exposed_bytes / static_cast<double>(mean);
  if (!(x > 0)) return 0;
  if (x < kSeriesLimit) {
    const double x2 = x * x;
    return 1.0 / x + 0.5 + x * (1.0 / 12 - x2 * (1.0 / 720 - x2 * (1.0 / 30240)));
  }
  const double p = -std::expm1(-x);
  return p > 0 ? 1.0 / p : 0;
}

// G = -S log(1 - u), u = 1/count = u + u^2/2 + u^3/3 + ... (times S).
double exposure_of(double count_w, uint64_t mean) {
  const double S = static_cast<double>(mean);
  if (mean <= 1 || !(count_w > 1)) return 64 * S;  // p = 1: the block covered a sample point for sure
  const double u = 1.0 / count_w;
  if (u < kSeriesLimit) {
    double sum = 1.0 / 9;
    for (int k = 8; k >= 1; --k) sum = 1.0 / k + u * sum;
    return S * u * sum;
  }
  return -S * std::log1p(-u);
}

// p' = 1 - (1 - a) e^-x with a = 1/count and x = growth/S, written
// a + y (1 - a) with y = 1 - e^-x so that nothing cancels.
double grown_count(double count_w, double growth, uint64_t mean) {
  if (mean <= 1 || !(count_w > 1)) return 1.0;
  if (!(growth > 0)) return count_w;
  const double a = 1.0 / count_w;
  const double x = growth / static_cast<double>(mean);
  const double y = x < 1e-3 ? x * (1 - x / 2 * (1 - x / 3 * (1 - x / 4))) : -std::expm1(-x);
  return 1.0 / (a + y * (1 - a));
}

Weight sample_weight(std::size_t n, uint64_t mean) {
  if (mean <= 1) return {static_cast<double>(n), 1.0};
  const double c = inclusion_count(static_cast<double>(n), mean);
  return {static_cast<double>(n) * c, c};
}

}  // namespace leakwatch::shim
