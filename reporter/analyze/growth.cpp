// reporter/analyze/growth.cpp — see growth.h for the contract and the method.
#include "reporter/analyze/growth.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <vector>

namespace leakwatch::analyze {
namespace {

// Decision thresholds; growth.h and docs/growth-analysis.md describe them.
constexpr double kZGrowing = 3.0;           // growth evidence needed to call a site growing
constexpr double kZHint = 2.0;              // below growing, above this: "weak upward trend"
constexpr double kZLevelGrowing = 2.0;      // end level above start level, for growing
constexpr double kZLevelShape = 3.0;        // same, for calling a rise or a fall at all
constexpr double kZ95 = 1.959963984540054;  // two-sided 95% normal quantile
constexpr double kPriorDumps = 2.0;         // weight of the model's scatter, in dumps
constexpr double kMinPeakSamples = 4.0;     // fewer effective samples at the peak: can't tell
constexpr double kChurnFactor = 4.0;        // allocated during the run >= this x peak live
constexpr double kChurnMinSamples = 10.0;   // ... and >= this many samples' worth
constexpr double kLevelledFraction = 0.6;   // recent rate (upper bound) below this x earlier rate
constexpr double kMaterialRise = 0.1;       // a rise smaller than this x end level is "flat"
constexpr double kFallOfExcursion = 0.5;    // a fall must undo this much of the excursion
constexpr double kFallOfPeak = 0.25;        // ... and this much of the peak
constexpr double kConfidenceCap = 0.9999;
constexpr double kMadToSigma = 1.482602218505602;  // MAD of a normal -> its sigma
constexpr std::size_t kMaxPairPoints = 200;        // Theil–Sen pairs: O(min(n,200)^2)
constexpr double kHalfPi = 1.5707963267948966;

// Upper tail of the standard normal, P(N > z).
double upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double capped(double c) { return std::clamp(c, 0.0, kConfidenceCap); }

struct Obs {
  double t, b, k, a;
  double var;  // sampling variance bound of b: S^2 k, or S b when k is unknown
};

// Median of v (reorders v). Mean of the two middle values for an even count.
double median_of(std::vector<double>& v) {
  if (v.empty()) return 0;
  const std::size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
  const double upper = v[h];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h));
  return 0.5 * (lower + upper);
}

// Theil–Sen slope over obs[b, e): median of the pairwise slopes. Long windows
// use kMaxPairPoints evenly spread dumps for the pairs (the ends are kept).
double theil_sen(const std::vector<Obs>& o, std::size_t b, std::size_t e) {
  const std::size_t n = e - b;
  if (n < 2) return 0;
  std::vector<std::size_t> idx;
  if (n <= kMaxPairPoints) {
    for (std::size_t i = b; i < e; ++i) idx.push_back(i);
  } else {
    const std::size_t m = kMaxPairPoints;
    for (std::size_t j = 0; j < m; ++j)
      idx.push_back(b + static_cast<std::size_t>(
                            std::llround(static_cast<double>(j) * static_cast<double>(n - 1) /
                                         static_cast<double>(m - 1))));
  }
  std::vector<double> slopes;
  slopes.reserve(idx.size() * (idx.size() - 1) / 2);
  for (std::size_t x = 0; x < idx.size(); ++x)
    for (std::size_t y = x + 1; y < idx.size(); ++y) {
      const Obs& p = o[idx[x]];
      const Obs& q = o[idx[y]];
      if (q.t > p.t) slopes.push_back((q.b - p.b) / (q.t - p.t));
    }
  return median_of(slopes);
}

// Shape of a window's dump times, enough to price the noise of a slope over it.
struct Design {
  double tbar = 0;
  double stt = 0;   // sum (t - tbar)^2
  double q = 0;     // Var(LS slope) of a unit-rate independent-increment process
  double rss1 = 0;  // expected LS residual sum of squares for that process
};

// q = sum_k dt_k (sum_{i>=k} c_i)^2 with c_i = (t_i - tbar)/stt: a least-squares
// slope over a process whose increments are independent with variance v per
// second has variance v*q (about 1.2/T for many evenly spaced dumps, against 1/T
// for the best possible estimate). rss1 is the same process's expected residual
// sum of squares, trace((I - H) M) with M_ij = min(t_i, t_j) - t_0.
Design design_of(const std::vector<double>& t) {
  Design d;
  const std::size_t n = t.size();
  if (n < 2) return d;
  for (double x : t) d.tbar += x;
  d.tbar /= static_cast<double>(n);
  for (double x : t) d.stt += (x - d.tbar) * (x - d.tbar);
  if (!(d.stt > 0)) return d;
  double tail_c = 0, tail_u1 = 0, q = 0, u1mu1 = 0, trace = 0;
  const double u1 = 1.0 / std::sqrt(static_cast<double>(n));
  for (std::size_t i = n; i-- > 1;) {
    tail_c += (t[i] - d.tbar) / d.stt;
    tail_u1 += u1;
    const double dt = t[i] - t[i - 1];
    q += dt * tail_c * tail_c;
    u1mu1 += dt * tail_u1 * tail_u1;
  }
  for (double x : t) trace += x - t[0];
  d.q = q;
  // u2 = (t - tbar)/sqrt(stt) = c * sqrt(stt), so u2' M u2 = q * stt.
  d.rss1 = std::max(0.0, trace - u1mu1 - q * d.stt);
  return d;
}

struct Fit {
  Trend trend;
  double scatter2 = 0;  // shrunk per-dump scatter variance (bytes^2)
};

// Pooled scatter variance: the robust residual spread over dof = n-2 dumps,
// shrunk toward the model's bound with the weight of kPriorDumps dumps.
double shrink(double empirical2, double model2, std::size_t n) {
  const double dof = n > 2 ? static_cast<double>(n - 2) : 0.0;
  return (dof * empirical2 + kPriorDumps * model2) / (dof + kPriorDumps);
}

// Noise of a window's live estimates, as the sampling model predicts it:
//  walk:  variance per second of a process with independent increments — the
//         counting noise of growth (each new sample of weight w adds w(w-n) <= S*w,
//         so S * phi per byte grown, phi = S/w <= 1);
//  turn:  turnover, a stationary process of variance turn_var (the S^2*k bound:
//         every live sample could be replaced) whose correlation decays over tau,
//         the mean lifetime by Little's law (live bytes / bytes freed per second)
//         or the residuals' own correlation time if longer; priced both as
//         exp(-dt/tau) and as max(0, 1 - dt/tau) (fixed lifetimes), the larger
//         wins. Short-lived churn is white noise (tau -> 0); a slowly turning
//         cache wanders like a walk (tau large). The overdispersion check uses the
//         exponential shape.
struct Noise {
  double walk = 0;
  double turn_var = 0;
  double tau = 0;
};

// Var of a least-squares slope with weights c over a stationary process of unit
// variance and correlation exp(-|dt|/tau): sum_ij c_i c_j exp(-|t_i - t_j|/tau),
// in O(n) by carrying the decayed running sum.
double ou_factor(const std::vector<double>& t, const std::vector<double>& c, double tau) {
  if (!(tau > 0)) {
    double s = 0;
    for (double x : c) s += x * x;
    return s;
  }
  double acc = 0, total = 0;
  for (std::size_t j = 0; j < t.size(); ++j) {
    if (j > 0) acc = (acc + c[j - 1]) * std::exp(-(t[j] - t[j - 1]) / tau);
    total += c[j] * c[j] + 2.0 * c[j] * acc;
  }
  return std::max(total, 0.0);
}

// Same for correlation max(0, 1 - |dt|/L): objects that all live exactly L
// seconds (a fixed TTL). At equal mean lifetime it can exceed the exponential
// shape by half, so turnover takes the larger of the two. O(n) with prefix sums
// of c and c*t over the dumps within L of each other.
double tri_factor(const std::vector<double>& t, const std::vector<double>& c, double len) {
  const std::size_t n = t.size();
  if (!(len > 0)) {
    double s = 0;
    for (double x : c) s += x * x;
    return s;
  }
  std::vector<double> pc(n + 1, 0), pct(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    pc[i + 1] = pc[i] + c[i];
    pct[i + 1] = pct[i] + c[i] * t[i];
  }
  double below = 0, diag = 0;
  std::size_t lo = 0;
  for (std::size_t j = 0; j < n; ++j) {
    while (t[j] - t[lo] >= len) ++lo;
    // sum over lo <= i <= j of c_i (1 - (t_j - t_i)/len)
    const double sc = pc[j + 1] - pc[lo], sct = pct[j + 1] - pct[lo];
    below += c[j] * ((1.0 - t[j] / len) * sc + sct / len);
    diag += c[j] * c[j];
  }
  return std::max(2.0 * below - diag, 0.0);
}

// Variance of the slope over the window under the noise model.
double slope_var(const Noise& m, const std::vector<double>& t, const Design& d) {
  double v = m.walk * d.q;
  if (m.turn_var > 0) {
    const double span = t.back() - t.front();
    if (m.tau > 50.0 * span) {
      // Far beyond the window an OU process is a walk of 2*var/tau (and the
      // direct sum would lose its digits to cancellation).
      v += 2.0 * m.turn_var / m.tau * d.q;
    } else {
      std::vector<double> c(t.size());
      for (std::size_t i = 0; i < t.size(); ++i) c[i] = (t[i] - d.tbar) / d.stt;
      v += m.turn_var * std::max(ou_factor(t, c, m.tau), tri_factor(t, c, m.tau));
    }
  }
  return v;
}

// Correlation time seen in the residuals: -gap / ln(lag-1 autocorrelation). Little's
// law gives the *mean* lifetime, but when a site mixes short- and long-lived
// objects its live set is mostly the long-lived ones and wanders more slowly than
// the mean suggests; the residuals show it. 0 when they look uncorrelated.
double correlation_time(const std::vector<double>& resid, const std::vector<double>& t) {
  const std::size_t n = resid.size();
  if (n < 8) return 0;
  double mean = 0;
  for (double r : resid) mean += r;
  mean /= static_cast<double>(n);
  double num = 0, den = 0;
  std::vector<double> gaps;
  for (std::size_t i = 0; i < n; ++i) {
    den += (resid[i] - mean) * (resid[i] - mean);
    if (i + 1 < n) {
      num += (resid[i] - mean) * (resid[i + 1] - mean);
      gaps.push_back(t[i + 1] - t[i]);
    }
  }
  if (!(den > 0)) return 0;
  const double rho = num / den;
  const double span = t.back() - t.front();
  if (rho <= 0.05) return 0;
  if (rho >= 0.999) return 1e3 * span;
  return -median_of(gaps) / std::log(rho);
}

// Overdispersion: how much more the data vary than the sampling model predicts
// (load-driven variation the model cannot know about). Uses the differences of
// successive slopes, (B[i+h]-B[i])/g+ - (B[i]-B[i-h])/g-, at lags 1 and L: any
// local linear trend cancels, so curvature in the trend is not counted as noise.
// Returns sum d^2 / sum E[d^2], each d^2 capped at 16 E[d^2] so a single spike or
// step cannot dominate; 1 when there is nothing to compare.
double dispersion(const std::vector<Obs>& o, std::size_t b, std::size_t e, const Noise& m) {
  const std::size_t n = e - b;
  double num = 0, den = 0;
  std::size_t used = 0;
  const std::size_t lags[2] = {1, std::clamp<std::size_t>(n / 10, 2, 8)};
  for (std::size_t h : lags) {
    if (n < 2 * h + 1) continue;
    for (std::size_t i = b + h; i + h < e; ++i) {
      const double gp = o[i + h].t - o[i].t, gm = o[i].t - o[i - h].t;
      if (!(gp > 0) || !(gm > 0)) continue;
      const double dv = (o[i + h].b - o[i].b) / gp - (o[i].b - o[i - h].b) / gm;
      double expect = m.walk * (1.0 / gp + 1.0 / gm);
      if (m.turn_var > 0) {
        const double ap = m.tau > 0 ? -std::expm1(-gp / m.tau) : 1.0;  // 1 - exp(-g/tau)
        const double am = m.tau > 0 ? -std::expm1(-gm / m.tau) : 1.0;
        expect += 2.0 * m.turn_var * (ap / (gp * gp) + am / (gm * gm) + ap * am / (gp * gm));
      }
      if (!(expect > 0)) continue;
      num += std::min(dv * dv, 16.0 * expect);
      den += expect;
      ++used;
    }
  }
  if (used < 4 || !(den > 0)) return 1.0;
  return num / den;
}

// Slope, its standard error, and the scatter of a window obs[b, e).
// SE = model SE * sqrt(max(1, overdispersion)): the sampling model is trusted as
// a floor on the noise, and the data can only widen it (quasi-likelihood style),
// so a short or discrete series cannot look more certain than sampling allows.
Fit fit_window(const std::vector<Obs>& o, std::size_t b, std::size_t e, double S) {
  Fit f;
  const std::size_t n = e - b;
  f.trend.points = n;
  std::vector<double> t;
  t.reserve(n);
  for (std::size_t i = b; i < e; ++i) t.push_back(o[i].t);
  const Design d = design_of(t);
  const double slope = theil_sen(o, b, e);
  f.trend.slope = slope;

  std::vector<double> resid;
  resid.reserve(n);
  double model2 = 0, mean_b = 0;
  for (std::size_t i = b; i < e; ++i) {
    resid.push_back(o[i].b - slope * o[i].t);
    model2 += o[i].var;
    mean_b += o[i].b;
  }
  model2 /= static_cast<double>(n);
  mean_b /= static_cast<double>(n);
  {
    std::vector<double> dev = resid;
    const double centre = median_of(dev);
    for (std::size_t i = 0; i < n; ++i) dev[i] = std::fabs(resid[i] - centre);
    const double sigma = kMadToSigma * median_of(dev);
    f.scatter2 = shrink(sigma * sigma, model2, n);
  }
  if (!(d.stt > 0)) {
    f.trend.se = std::numeric_limits<double>::infinity();
    return f;
  }
  const Obs& first = o[b];
  const Obs& last = o[e - 1];
  const double span = last.t - first.t;

  Noise m;
  double phi = 1;
  const double db = last.b - first.b, dk = last.k - first.k;
  if (db > 0 && dk > 0 && first.k > 0 && last.k > 0) phi = std::min(1.0, S * dk / db);
  m.walk = S * phi * std::max(slope, 0.0);
  m.turn_var = model2;
  const bool alloc_known = last.a > 0;
  const double freed_rate = (last.a - first.a) / span - std::max(slope, 0.0);
  if (alloc_known) {
    if (freed_rate > 0 && mean_b > 0)
      m.tau = std::max(mean_b / freed_rate, correlation_time(resid, t));
    else
      m.turn_var = 0;  // nothing is freed: no turnover
  } else {
    // Without allocation counts the lifetime is unknown: take the one that makes
    // the slope least certain.
    double worst = -1, best_tau = 0;
    for (double frac : {0.0, 0.125, 0.25, 0.5, 1.0, 2.0}) {
      Noise trial = m;
      trial.tau = frac * span;
      const double v = slope_var(trial, t, d);
      if (v > worst) worst = v, best_tau = trial.tau;
    }
    m.tau = best_tau;
  }
  const double var = slope_var(m, t, d) * std::max(1.0, dispersion(o, b, e, m));
  f.trend.se = std::sqrt(var);
  return f;
}

double z_of(const Trend& t) {
  if (t.se > 0 && std::isfinite(t.se)) return t.slope / t.se;
  if (t.se == 0) return t.slope > 0 ? 1e9 : t.slope < 0 ? -1e9 : 0.0;
  return 0;  // infinite se: no information
}

// Growth evidence from the trends of the whole run, its early half and its recent
// half. When the early and the recent half grow at one steady rate (their slopes,
// from disjoint dumps, differ by less than 2 sigma), the whole run may clear the
// 3-sigma bar for them as long as the recent half clears 2 on its own; otherwise
// (a fill that slowed, a warm-up, a leak that started late) the recent half must
// clear 3 sigma alone. *steady_out says which case it was.
double growth_evidence(const Trend& all, const Trend& early, const Trend& rec,
                       bool* steady_out = nullptr) {
  const bool steady = std::isfinite(early.se) && std::isfinite(rec.se) &&
                      std::fabs(early.slope - rec.slope) <= 2.0 * std::hypot(early.se, rec.se);
  if (steady_out) *steady_out = steady;
  const double z_all = z_of(all), z_rec = z_of(rec);
  return steady ? std::min(std::max(z_all, z_rec), z_rec + (kZGrowing - kZHint)) : z_rec;
}

struct Level {
  double bytes = 0, t = 0, k = 0;
};

// Median level, time and sample count of obs[b, e).
Level level_of(const std::vector<Obs>& o, std::size_t b, std::size_t e, double S) {
  std::vector<double> bs, ts, ks;
  for (std::size_t i = b; i < e; ++i) {
    bs.push_back(o[i].b);
    ts.push_back(o[i].t);
    ks.push_back(o[i].k > 0 ? o[i].k : o[i].b / S);
  }
  return {median_of(bs), median_of(ts), median_of(ks)};
}

// Variance of a median of q dumps under turnover noise (about pi/2 * var / q).
double median_factor(std::size_t q) {
  return q <= 1 ? 1.0 : std::min(1.0, kHalfPi / static_cast<double>(q));
}

std::size_t level_span(std::size_t n) { return std::clamp<std::size_t>((n + 9) / 10, 1, 5); }

// Index of the first dump of the recent half (at least 3 dumps in it).
std::size_t recent_begin(const std::vector<double>& t) {
  const std::size_t n = t.size();
  const double mid = t.front() + 0.5 * (t.back() - t.front());
  std::size_t rb = static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), mid) - t.begin());
  if (n - rb < 3) rb = n >= 3 ? n - 3 : 0;
  return rb;
}

// One past the last dump of the early half (at least 3 dumps in it).
std::size_t early_end(const std::vector<double>& t) {
  const std::size_t n = t.size();
  const double mid = t.front() + 0.5 * (t.back() - t.front());
  auto eb = static_cast<std::size_t>(std::upper_bound(t.begin(), t.end(), mid) - t.begin());
  return std::min(n, std::max<std::size_t>(eb, 3));
}

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::growing:
      return "growing";
    case Verdict::plateau:
      return "plateau";
    case Verdict::stable:
      return "stable";
    case Verdict::transient:
      return "transient";
    case Verdict::insufficient:
      return "insufficient";
  }
  return "unknown";
}

GrowthResult analyze_series(const std::vector<Point>& points, const SeriesOptions& opt) {
  GrowthResult r;
  r.slope_low = -std::numeric_limits<double>::infinity();  // until there is an estimate
  r.slope_high = std::numeric_limits<double>::infinity();
  std::vector<Obs> o;
  o.reserve(points.size());
  for (const Point& p : points) {
    if (!std::isfinite(p.t_s) || !std::isfinite(p.live_bytes)) continue;
    const double k = std::isfinite(p.live_samples) ? std::max(p.live_samples, 0.0) : 0.0;
    const double a = std::isfinite(p.alloc_bytes) ? std::max(p.alloc_bytes, 0.0) : 0.0;
    o.push_back({p.t_s, std::max(p.live_bytes, 0.0), k, a, 0});
  }
  std::stable_sort(o.begin(), o.end(), [](const Obs& x, const Obs& y) { return x.t < y.t; });
  const std::size_t n = o.size();
  r.overall.points = r.early.points = r.recent.points = n;

  if (n < 3) {
    r.reason = "fewer than 3 dumps";
    if (n == 2 && o[1].t > o[0].t) {
      // An unqualified two-point slope, so combine() can still add the rate up.
      r.growth_bytes_per_s = (o[1].b - o[0].b) / (o[1].t - o[0].t);
      r.overall.slope = r.early.slope = r.recent.slope = r.growth_bytes_per_s;
      r.overall.se = r.early.se = r.recent.se = std::numeric_limits<double>::infinity();
    }
    return r;
  }
  const double span = o.back().t - o.front().t;
  r.span_s = span;
  if (!(span > 0)) {
    r.reason = "all dumps at the same time";
    return r;
  }

  double S = opt.sample_bytes;
  if (!(S > 0) || !std::isfinite(S)) {
    // Every sample weighs at least S, and about S for small allocations.
    S = std::numeric_limits<double>::infinity();
    for (const Obs& x : o)
      if (x.k >= 1 && x.b > 0) S = std::min(S, x.b / x.k);
    if (!std::isfinite(S)) {
      r.reason = "sampling rate unknown";
      return r;
    }
  }
  for (Obs& x : o) x.var = x.k > 0 ? S * S * x.k : S * x.b;

  std::vector<double> times;
  times.reserve(n);
  for (const Obs& x : o) times.push_back(x.t);
  const std::size_t rb = recent_begin(times);
  const std::size_t eb = early_end(times);
  const Fit all = fit_window(o, 0, n, S);
  const Fit early = fit_window(o, 0, eb, S);
  const Fit rec = fit_window(o, rb, n, S);
  r.overall = all.trend;
  r.early = early.trend;
  r.recent = rec.trend;

  bool steady = false;
  const double z = growth_evidence(all.trend, early.trend, rec.trend, &steady);
  const double z_rec = z_of(rec.trend);
  r.z = z;

  // Reported rate: the whole run's slope when the recent half agrees with it (the
  // more precise estimate of one steady rate), else the recent slope (the current
  // rate). The two are nested, so Var(difference) ~ Var(recent) - Var(all).
  const double se_diff =
      std::sqrt(std::max(rec.trend.se * rec.trend.se - all.trend.se * all.trend.se,
                         0.25 * rec.trend.se * rec.trend.se));
  const bool agree = std::fabs(all.trend.slope - rec.trend.slope) <= 2.0 * se_diff;
  const Trend& rep = agree ? all.trend : rec.trend;
  r.growth_bytes_per_s = rep.slope;
  r.slope_low = rep.slope - kZ95 * rep.se;
  r.slope_high = rep.slope + kZ95 * rep.se;

  // Levels at the start and end, the peak, and their noise.
  const std::size_t q = level_span(n);
  const Level start = level_of(o, 0, q, S), end = level_of(o, n - q, n, S);
  const double mf = median_factor(q);
  const double v_start = all.scatter2 * mf;
  const double v_end = rec.scatter2 * mf + S * S * std::max(end.k - start.k, 0.0);
  const double rise = end.bytes - start.bytes;
  const double rise_sd = std::sqrt(v_start + v_end);
  std::size_t ip = 0;
  double peak_neff = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (o[i].b > o[ip].b) ip = i;
    if (o[i].b > 0)
      peak_neff = std::max(peak_neff, o[i].var > 0 ? o[i].b * o[i].b / o[i].var : 1e18);
  }
  const double peak = o[ip].b;
  const double drop = peak - end.bytes;
  const double allocated = std::max(0.0, o.back().a - o.front().a);

  const bool rise_clear = rise > kZLevelGrowing * rise_sd;
  const bool rise_sig = rise > kZLevelShape * rise_sd;
  // Levelled off, either of:
  //  * flat after the rise: no real recent growth (z_recent < 2) and even its upper
  //    bound is well below the run's average rate of rise (a cache that filled,
  //    a step up);
  //  * decelerated: the recent slope is well below — significantly — the rate
  //    over the run's second quarter (a cache still filling, ever more slowly).
  //    The second quarter, not the first, so that a process that fills its
  //    working set early (up to a quarter of the run) and then leaks is still
  //    seen to grow. Rates from median levels, so a step counts as a rise.
  auto level_at = [&](double when) {
    const auto it = std::lower_bound(times.begin(), times.end(), when);
    const auto c = static_cast<std::size_t>(it - times.begin());
    const std::size_t from = std::min(c >= q / 2 ? c - q / 2 : 0, n - q);
    return level_of(o, from, from + q, S);
  };
  const double avg_rate = end.t > start.t ? rise / (end.t - start.t) : 0.0;
  const bool flat_after_rise =
      z_rec < kZHint && rec.trend.slope + 2.0 * rec.trend.se < kLevelledFraction * avg_rate;
  bool decelerated = false;
  const Level quarter = level_at(o.front().t + 0.25 * span);
  const Level middle = level_at(o.front().t + 0.5 * span);
  if (middle.t > quarter.t) {
    const double dt = middle.t - quarter.t;
    const double q2_rate = (middle.bytes - quarter.bytes) / dt;
    const double q2_se =
        std::sqrt(2.0 * all.scatter2 * mf + S * S * std::max(middle.k - quarter.k, 0.0)) / dt;
    decelerated =
        rec.trend.slope + 2.0 * std::hypot(rec.trend.se, q2_se) < kLevelledFraction * q2_rate;
  }
  const bool levelled = rise_sig && (flat_after_rise || decelerated);
  const bool rose = rise_sig && rise >= kMaterialRise * end.bytes;
  const bool fell = drop > kZLevelShape * std::sqrt(o[ip].var + v_end) &&
                    drop >= kFallOfExcursion * (peak - std::min(start.bytes, end.bytes)) &&
                    drop >= kFallOfPeak * peak;
  const bool churn = allocated >= std::max(kChurnFactor * peak, kChurnMinSamples * S);

  const double conf_not_growing = capped(normal_cdf(kZGrowing - z_rec));
  auto set = [&r](Verdict v, double conf, const char* why) {
    r.verdict = v;
    r.confidence = conf;
    r.reason = why;
  };
  if (peak_neff < kMinPeakSamples) {
    if (churn)
      set(Verdict::transient, conf_not_growing, "churn: allocated and freed, little ever live");
    else
      set(Verdict::insufficient, 0, "too few samples");
  } else if (z >= kZGrowing && !levelled) {
    if (rise_clear)
      set(Verdict::growing, capped(normal_cdf(z)), "keeps growing");
    else
      set(Verdict::insufficient, 0, "upward trend, but the total rise is within noise");
  } else if (fell) {
    set(Verdict::transient, conf_not_growing, "rose and fell back");
  } else if (rose && levelled) {
    set(Verdict::plateau, conf_not_growing, "rose, then levelled off");
  } else if (rose) {
    set(Verdict::insufficient, 0, "rose; too little evidence whether it still grows");
  } else if (churn) {
    set(Verdict::transient, conf_not_growing, "churn: allocated and freed, no trend");
  } else if (z >= kZHint) {
    set(Verdict::insufficient, 0, "weak upward trend");
  } else {
    set(Verdict::stable, conf_not_growing, "flat within noise");
  }
  return r;
}

namespace {

// Probability that the growing rule fires, when the whole-run and recent z are
// normal with means mu_all, mu_rec, unit variance and correlation rho, and the
// level test passes independently with probability p_level.
double detect_probability(double mu_all, double mu_rec, double rho, double p_level) {
  // rule: z_rec >= kZHint and (z_all >= kZGrowing or z_rec >= kZGrowing)
  const double sd_cond = std::sqrt(std::max(1.0 - rho * rho, 1e-12));
  double p = upper_tail(kZGrowing - mu_rec);
  const int steps = 200;  // midpoint rule over z_rec in [kZHint, kZGrowing)
  const double h = (kZGrowing - kZHint) / steps;
  for (int i = 0; i < steps; ++i) {
    const double x = kZHint + (i + 0.5) * h;
    const double dens =
        std::exp(-0.5 * (x - mu_rec) * (x - mu_rec)) / std::sqrt(2.0 * std::numbers::pi);
    p += h * dens * upper_tail((kZGrowing - mu_all - rho * (x - mu_rec)) / sd_cond);
  }
  return std::clamp(p, 0.0, 1.0) * p_level;
}

}  // namespace

double detection_floor_bytes_per_s(double sample_bytes, double duration_s, std::size_t n_dumps) {
  const double inf = std::numeric_limits<double>::infinity();
  if (!(sample_bytes > 0) || !(duration_s > 0) || n_dumps < 3 || !std::isfinite(sample_bytes) ||
      !std::isfinite(duration_s))
    return inf;
  // A steady small-allocation leak of rate r, starting with nothing live at the
  // first dump, n evenly spaced dumps. It frees nothing, so its only noise is its
  // own counting walk (S * r per second); every variance is r * S * (a number
  // from the dump times), and each z grows as sqrt(r / S). Computed at r = S = 1.
  const std::size_t n = n_dumps;
  std::vector<double> t(n);
  for (std::size_t i = 0; i < n; ++i)
    t[i] = duration_s * static_cast<double>(i) / static_cast<double>(n - 1);
  const std::size_t rb = recent_begin(t);
  const std::vector<double> tr(t.begin() + static_cast<std::ptrdiff_t>(rb), t.end());
  const Design da = design_of(t), dr = design_of(tr);
  if (!(da.q > 0) || !(dr.q > 0)) return inf;
  // Theil–Sen on a sparse counting process is less efficient than least squares
  // and a little biased low; tests/unit/growth_test.cpp measures the detection
  // rate at the floor by simulating the sampler, which this factor calibrates.
  constexpr double kEfficiency = 0.93;
  const double a_all = kEfficiency / std::sqrt(da.q), a_rec = kEfficiency / std::sqrt(dr.q);
  const double rho = std::min(a_all, a_rec) / std::max(a_all, a_rec);

  // The end level must also clear the start level by kZLevelGrowing sigma: the
  // rise is r*(te - ts), its variance r*S*(te - ts) plus the scatter terms.
  const std::size_t q = level_span(n);
  auto mid_time = [&t](std::size_t b, std::size_t e) {
    std::vector<double> v(t.begin() + static_cast<std::ptrdiff_t>(b),
                          t.begin() + static_cast<std::ptrdiff_t>(e));
    return median_of(v);
  };
  const double ts = mid_time(0, q), te = mid_time(n - q, n);
  auto scatter_unit = [](const std::vector<double>& w, const Design& d) {
    double mean_b = 0;  // live bytes = t at unit rate, and S^2 k = S b = t at S = 1
    for (double x : w) mean_b += x;
    mean_b /= static_cast<double>(w.size());
    const double empirical2 = w.size() > 2 ? d.rss1 / static_cast<double>(w.size() - 2) : 0.0;
    return shrink(empirical2, mean_b, w.size());
  };
  const double mf = median_factor(q);
  const double level_var = (scatter_unit(t, da) + scatter_unit(tr, dr)) * mf + (te - ts);
  const double a_level = te > ts ? (te - ts) / std::sqrt(level_var) : 0.0;

  auto p_detect = [&](double r) {  // r in units of S
    const double sr = std::sqrt(r);
    const double p_level = a_level > 0 ? upper_tail(kZLevelGrowing - a_level * sr) : 0.0;
    return detect_probability(a_all * sr, a_rec * sr, rho, p_level);
  };
  // Bisection (in log r) for a 50% chance of being flagged.
  double lo = 1e-9 / duration_s, hi = 1e9 / duration_s;
  if (p_detect(hi) < 0.5) return inf;
  for (int i = 0; i < 200; ++i) {
    const double mid = std::sqrt(lo * hi);
    (p_detect(mid) < 0.5 ? lo : hi) = mid;
    if (hi / lo < 1 + 1e-9) break;
  }
  return hi * sample_bytes;
}

namespace {

// The verdict of pooled results: growing on pooled evidence or on one strong
// process; otherwise the most common verdict among the parts.
void decide_pooled(const std::vector<GrowthResult>& parts, std::size_t pooled, std::size_t analysed,
                   double best_growing_z, const char* pooled_reason, GrowthResult* out) {
  double z_pooled = -std::numeric_limits<double>::infinity();
  if (pooled > 0) z_pooled = growth_evidence(out->overall, out->early, out->recent);
  const double p_pooled = pooled > 0 ? upper_tail(z_pooled) : 1.0;
  const double p_best =
      analysed > 0 && std::isfinite(best_growing_z)
          ? std::min(1.0, static_cast<double>(analysed) * upper_tail(best_growing_z))
          : 1.0;
  const double p = std::min(p_pooled, p_best);
  out->z = pooled > 0 ? z_pooled : best_growing_z;
  if (!std::isfinite(out->z)) out->z = 0;
  if (p <= upper_tail(kZGrowing)) {
    out->verdict = Verdict::growing;
    out->confidence = capped(1.0 - p);
    out->reason = p == p_pooled ? pooled_reason : "keeps growing (in at least one process)";
    return;
  }
  // Not growing: the most common verdict among the parts that have one.
  const Verdict order[] = {Verdict::plateau, Verdict::transient, Verdict::stable};
  std::size_t best_count = 0;
  Verdict best = Verdict::insufficient;
  for (Verdict v : order) {
    std::size_t c = 0;
    for (const GrowthResult& g : parts) c += g.verdict == v;
    if (c > best_count) best_count = c, best = v;
  }
  out->verdict = best;
  if (best == Verdict::insufficient) {
    out->confidence = 0;
    out->reason = "no process has enough evidence";
    return;
  }
  double conf = 0;
  for (const GrowthResult& g : parts)
    if (g.verdict == best) {
      conf += g.confidence;
      out->reason = g.reason;
    }
  out->confidence = conf / static_cast<double>(best_count);
}

// A part whose trends can be pooled: growing or individually inconclusive
// (stable/insufficient below 3 sigma -- not plateau or transient, whose
// shape explains their trend), with finite errors on all three windows.
bool poolable(const GrowthResult& g) {
  const bool inconclusive = (g.verdict == Verdict::stable || g.verdict == Verdict::insufficient) && g.z < kZGrowing;
  const bool usable = std::isfinite(g.overall.se) && std::isfinite(g.early.se) && std::isfinite(g.recent.se) &&
                      g.overall.points >= 3;
  return usable && (g.verdict == Verdict::growing || inconclusive);
}

}  // namespace

GrowthResult combine(const std::vector<GrowthResult>& per_process) {
  GrowthResult out;
  if (per_process.empty()) {
    out.reason = "no processes";
    return out;
  }
  double rate = 0, var = 0;
  double s_all = 0, v_all = 0, s_early = 0, v_early = 0, s_rec = 0, v_rec = 0;
  std::size_t pooled = 0, analysed = 0, pts_all = 0, pts_early = 0, pts_rec = 0;
  double best_growing_z = -std::numeric_limits<double>::infinity();
  for (const GrowthResult& g : per_process) {
    rate += g.growth_bytes_per_s;
    const double se = (g.slope_high - g.slope_low) / (2.0 * kZ95);
    var += std::isfinite(se) ? se * se : std::numeric_limits<double>::infinity();
    pts_all += g.overall.points;
    pts_early += g.early.points;
    pts_rec += g.recent.points;
    if (g.overall.points >= 3) ++analysed;
    if (g.verdict == Verdict::growing) best_growing_z = std::max(best_growing_z, g.z);
    if (poolable(g)) {
      ++pooled;
      s_all += g.overall.slope;
      v_all += g.overall.se * g.overall.se;
      s_early += g.early.slope;
      v_early += g.early.se * g.early.se;
      s_rec += g.recent.slope;
      v_rec += g.recent.se * g.recent.se;
    }
  }
  const double se = std::sqrt(var);
  out.growth_bytes_per_s = rate;
  out.slope_low = rate - kZ95 * se;
  out.slope_high = rate + kZ95 * se;
  out.overall = {s_all, std::sqrt(v_all), pts_all};
  out.early = {s_early, std::sqrt(v_early), pts_early};
  out.recent = {s_rec, std::sqrt(v_rec), pts_rec};
  decide_pooled(per_process, pooled, analysed, best_growing_z, "keeps growing (pooled over processes)", &out);
  return out;
}

GrowthResult combine_incarnations(const std::vector<GrowthResult>& in_order) {
  if (in_order.size() == 1) return in_order.front();
  GrowthResult out;
  if (in_order.empty()) {
    out.reason = "no processes";
    return out;
  }
  // Inverse-variance weighted means, window by window, over the poolable parts.
  struct Mean {
    double sw = 0, sws = 0;
    std::size_t pts = 0;
    void add(const Trend& t) {
      double w = 1.0 / (t.se * t.se);
      sw += w, sws += w * t.slope, pts += t.points;
    }
    Trend trend() const { return sw > 0 ? Trend{sws / sw, 1.0 / std::sqrt(sw), pts} : Trend{0, 0, pts}; }
  } all, early, rec;
  double rate_w = 0, rate_ws = 0, rate_var = 0, rate_sum = 0;
  std::size_t pooled = 0, analysed = 0;
  double best_growing_z = -std::numeric_limits<double>::infinity();
  for (const GrowthResult& g : in_order) {
    rate_sum += g.growth_bytes_per_s;
    const double se = (g.slope_high - g.slope_low) / (2.0 * kZ95);
    if (std::isfinite(se) && se > 0 && g.span_s > 0) {
      rate_w += g.span_s;
      rate_ws += g.span_s * g.growth_bytes_per_s;
      rate_var += g.span_s * g.span_s * se * se;
    }
    if (g.overall.points >= 3) ++analysed;
    if (g.verdict == Verdict::growing) best_growing_z = std::max(best_growing_z, g.z);
    if (poolable(g) && g.overall.se > 0 && g.early.se > 0 && g.recent.se > 0) {
      ++pooled;
      all.add(g.overall);
      early.add(g.early);
      rec.add(g.recent);
    }
  }
  out.growth_bytes_per_s = rate_w > 0 ? rate_ws / rate_w : rate_sum / static_cast<double>(in_order.size());
  const double se = rate_w > 0 ? std::sqrt(rate_var) / rate_w : std::numeric_limits<double>::infinity();
  out.slope_low = out.growth_bytes_per_s - kZ95 * se;
  out.slope_high = out.growth_bytes_per_s + kZ95 * se;
  out.overall = all.trend();
  out.early = early.trend();
  out.recent = rec.trend();
  decide_pooled(in_order, pooled, analysed, best_growing_z, "keeps growing (in each incarnation)", &out);
  return out;
}

}  // namespace leakwatch::analyze
