// reporter/analyze/growth.cpp — see growth.h for the contract and the method.
#include "reporter/analyze/growth.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace leakwatch::analyze {
namespace {

// Decision thresholds; growth.h and docs/growth-analysis.md describe them.
constexpr double kZGrowing = 3.0;          // growth evidence needed to call a site growing
constexpr double kZHint = 2.0;             // below growing, above this: "weak upward trend"
constexpr double kZLevelGrowing = 2.0;     // end level above start level, for growing
constexpr double kZLevelShape = 3.0;       // same, for calling a rise or a fall at all
constexpr double kZ95 = 1.959963984540054; // two-sided 95% normal quantile
constexpr double kPriorDumps = 2.0;        // weight of the model's scatter, in dumps
constexpr double kMinPeakSamples = 4.0;    // fewer effective samples at the peak: can't tell
constexpr double kChurnFactor = 4.0;       // allocated during the run >= this x peak live
constexpr double kChurnMinSamples = 10.0;  // ... and >= this many samples' worth
constexpr double kLevelledFraction = 0.6;  // recent rate (upper bound) below this x average rise
constexpr double kMaterialRise = 0.1;      // a rise smaller than this x end level is "flat"
constexpr double kFallOfExcursion = 0.5;   // a fall must undo this much of the excursion
constexpr double kFallOfPeak = 0.25;       // ... and this much of the peak
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
      idx.push_back(b + static_cast<std::size_t>(std::llround(static_cast<double>(j) *
                                                              static_cast<double>(n - 1) /
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
  double stt = 0;    // sum (t - tbar)^2
  double q = 0;      // Var(LS slope) of a unit-rate independent-increment process
  double rss1 = 0;   // expected LS residual sum of squares for that process
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

// Robust variance of the differences e[i+h] - e[i] over a window's detrended
// residuals, and the median time gap they span.
struct LagStats {
  double var = 0, gap = 0;
  std::size_t pairs = 0;
};
LagStats lag_stats(const std::vector<double>& e, const std::vector<double>& t, std::size_t h) {
  LagStats s;
  if (h == 0 || e.size() <= h) return s;
  std::vector<double> d, g;
  for (std::size_t i = 0; i + h < e.size(); ++i) {
    d.push_back(std::fabs(e[i + h] - e[i]));
    g.push_back(t[i + h] - t[i]);
  }
  s.pairs = d.size();
  const double mad = kMadToSigma * median_of(d);  // differences have mean ~0: MAD about 0
  s.var = mad * mad;
  s.gap = median_of(g);
  return s;
}

// Slope and its standard error over obs[b, e).
//
// The live estimate of a site is a trend plus two kinds of noise:
//  white:  memory replaced between dumps, so each dump sees a fresh sample set;
//  walk:   objects living longer than a dump interval come and go one by one, so
//          the estimate wanders with independent increments (a leak's own counting
//          noise, a cache's turnover). A walk of v bytes^2/s makes a slope over T
//          uncertain by ~sqrt(1.2 v / T), however many dumps there are.
// Their sizes come from the variogram of the residuals: the spread of differences
// at lag 1 is 2*white + v*gap1, at a longer lag 2*white + v*gapL. The walk is never
// taken below the counting noise of the fitted growth (S * phi * slope), and the
// white part is shrunk toward the sampling bound S^2*k so few dumps cannot look
// smoother than the sampling allows.
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
  double model2 = 0;
  for (std::size_t i = b; i < e; ++i) {
    resid.push_back(o[i].b - slope * o[i].t);
    model2 += o[i].var;
  }
  model2 /= static_cast<double>(n);
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

  const LagStats l1 = lag_stats(resid, t, 1);
  const LagStats ll = lag_stats(resid, t, std::clamp<std::size_t>(n / 4, 2, n > 1 ? n - 1 : 1));
  double walk = 0;
  if (ll.pairs > 0 && ll.gap > l1.gap) walk = std::max(0.0, (ll.var - l1.var) / (ll.gap - l1.gap));
  const double white = std::max(0.0, 0.5 * (l1.var - walk * l1.gap));

  // Counting noise of the growth itself. New samples of weight w add variance
  // w(w - n) <= S*w each, i.e. S * (S/w) per byte of growth: phi = S/w from the
  // window's own increments (1 for small allocations, less for big ones).
  double phi = 1;
  const Obs& first = o[b];
  const Obs& last = o[e - 1];
  const double db = last.b - first.b, dk = last.k - first.k;
  if (db > 0 && dk > 0 && first.k > 0 && last.k > 0) phi = std::min(1.0, S * dk / db);
  walk = std::max(walk, S * phi * std::max(slope, 0.0));
  f.trend.se = std::sqrt(walk * d.q + shrink(white, model2, n) / d.stt);
  return f;
}

double z_of(const Trend& t) {
  if (t.se > 0 && std::isfinite(t.se)) return t.slope / t.se;
  if (t.se == 0) return t.slope > 0 ? 1e9 : t.slope < 0 ? -1e9 : 0.0;
  return 0;  // infinite se: no information
}

double growth_z(double z_all, double z_recent) {
  return std::min(std::max(z_all, z_recent), z_recent + (kZGrowing - kZHint));
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

std::size_t level_span(std::size_t n) {
  return std::clamp<std::size_t>((n + 9) / 10, 1, 5);
}

// Index of the first dump of the recent half (at least 3 dumps in it).
std::size_t recent_begin(const std::vector<double>& t) {
  const std::size_t n = t.size();
  const double mid = t.front() + 0.5 * (t.back() - t.front());
  std::size_t rb = static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), mid) - t.begin());
  if (n - rb < 3) rb = n >= 3 ? n - 3 : 0;
  return rb;
}

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::growing: return "growing";
    case Verdict::plateau: return "plateau";
    case Verdict::stable: return "stable";
    case Verdict::transient: return "transient";
    case Verdict::insufficient: return "insufficient";
  }
  return "unknown";
}

GrowthResult analyze_series(const std::vector<Point>& points, const SeriesOptions& opt) {
  GrowthResult r;
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
  r.overall.points = r.recent.points = n;

  if (n < 3) {
    r.reason = "fewer than 3 dumps";
    if (n == 2 && o[1].t > o[0].t) {
      // An unqualified two-point slope, so combine() can still add the rate up.
      r.growth_bytes_per_s = (o[1].b - o[0].b) / (o[1].t - o[0].t);
      r.overall.slope = r.recent.slope = r.growth_bytes_per_s;
      r.overall.se = r.recent.se = std::numeric_limits<double>::infinity();
    }
    r.slope_low = -std::numeric_limits<double>::infinity();
    r.slope_high = std::numeric_limits<double>::infinity();
    return r;
  }
  r.slope_low = -std::numeric_limits<double>::infinity();
  r.slope_high = std::numeric_limits<double>::infinity();
  const double span = o.back().t - o.front().t;
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
  const Fit all = fit_window(o, 0, n, S);
  const Fit rec = fit_window(o, rb, n, S);
  r.overall = all.trend;
  r.recent = rec.trend;

  const double z_all = z_of(all.trend), z_rec = z_of(rec.trend);
  const double z = growth_z(z_all, z_rec);
  r.z = z;

  // Reported rate: the whole run's slope if the recent half agrees with it (it is
  // then the more precise estimate of one steady rate), else the recent slope.
  // The two are nested, so Var(difference) ~ Var(recent) - Var(all).
  const double var_diff = std::max(rec.trend.se * rec.trend.se - all.trend.se * all.trend.se,
                                   0.25 * rec.trend.se * rec.trend.se);
  const bool agree = std::fabs(all.trend.slope - rec.trend.slope) <= 2.0 * std::sqrt(var_diff);
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
    if (o[i].b > 0) peak_neff = std::max(peak_neff, o[i].var > 0 ? o[i].b * o[i].b / o[i].var : 1e18);
  }
  const double peak = o[ip].b;
  const double drop = peak - end.bytes;
  const double allocated = std::max(0.0, o.back().a - o.front().a);

  const bool rise_clear = rise > kZLevelGrowing * rise_sd;
  const bool rise_sig = rise > kZLevelShape * rise_sd;
  const double avg_rate = end.t > start.t ? rise / (end.t - start.t) : 0.0;
  const bool levelled =
      rise_sig && rec.trend.slope + 2.0 * rec.trend.se < kLevelledFraction * avg_rate;
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

double detection_floor_bytes_per_s(double sample_bytes, double duration_s, std::size_t n_dumps) {
  const double inf = std::numeric_limits<double>::infinity();
  if (!(sample_bytes > 0) || !(duration_s > 0) || n_dumps < 3 || !std::isfinite(sample_bytes) ||
      !std::isfinite(duration_s))
    return inf;
  // A steady small-allocation leak of rate r from nothing at the first dump: every
  // variance below is r * S * (a number from the design), so z grows as sqrt(r)
  // and each threshold gives r directly. Computed at r = S = 1.
  const std::size_t n = n_dumps;
  std::vector<double> t(n);
  for (std::size_t i = 0; i < n; ++i)
    t[i] = duration_s * static_cast<double>(i) / static_cast<double>(n - 1);
  const std::size_t rb = recent_begin(t);

  struct Unit {
    double se2, scatter2;
  };
  auto unit = [](const std::vector<double>& w) {
    const Design d = design_of(w);
    const std::size_t m = w.size();
    double mean_b = 0;  // live bytes = t at unit rate; S^2 k = S b = t at S = 1
    for (double x : w) mean_b += x;
    mean_b /= static_cast<double>(m);
    const double empirical2 = m > 2 ? d.rss1 / static_cast<double>(m - 2) : 0.0;
    const double scatter2 = shrink(empirical2, mean_b, m);
    // No white noise in a pure leak: the walk is its counting noise, the white part
    // is the prior alone.
    return Unit{d.q + shrink(0.0, mean_b, m) / d.stt, scatter2};
  };
  const Unit all = unit(t);
  const Unit rec = unit(std::vector<double>(t.begin() + static_cast<std::ptrdiff_t>(rb), t.end()));
  // z(r) = a * sqrt(r / S) with a = 1 / sqrt(se2 at unit rate).
  const double a_all = 1.0 / std::sqrt(all.se2), a_rec = 1.0 / std::sqrt(rec.se2);
  const double z_need = kZGrowing / std::max(a_all, a_rec);
  const double zr_need = kZHint / a_rec;
  double r_unit = std::max(z_need * z_need, zr_need * zr_need);

  // And the end level must clear the start level by kZLevelGrowing sigma.
  const std::size_t q = level_span(n);
  auto mid_time = [&t](std::size_t b, std::size_t e) {
    std::vector<double> v(t.begin() + static_cast<std::ptrdiff_t>(b),
                          t.begin() + static_cast<std::ptrdiff_t>(e));
    return median_of(v);
  };
  const double ts = mid_time(0, q), te = mid_time(n - q, n);
  const double mf = median_factor(q);
  const double v_unit = all.scatter2 * mf + rec.scatter2 * mf + (te - ts);
  if (te > ts) r_unit = std::max(r_unit, kZLevelGrowing * kZLevelGrowing * v_unit /
                                             ((te - ts) * (te - ts)));
  return r_unit * sample_bytes;
}

GrowthResult combine(const std::vector<GrowthResult>& per_process) {
  GrowthResult out;
  if (per_process.empty()) {
    out.reason = "no processes";
    return out;
  }
  double rate = 0, var = 0;
  double s_all = 0, v_all = 0, s_rec = 0, v_rec = 0;
  std::size_t pooled = 0, analysed = 0, pts_all = 0, pts_rec = 0;
  double best_growing_z = -std::numeric_limits<double>::infinity();
  for (const GrowthResult& g : per_process) {
    rate += g.growth_bytes_per_s;
    const double se = (g.slope_high - g.slope_low) / (2.0 * kZ95);
    var += std::isfinite(se) ? se * se : std::numeric_limits<double>::infinity();
    pts_all += g.overall.points;
    pts_rec += g.recent.points;
    if (g.overall.points >= 3) ++analysed;
    if (g.verdict == Verdict::growing) best_growing_z = std::max(best_growing_z, g.z);
    const bool inconclusive = (g.verdict == Verdict::stable || g.verdict == Verdict::insufficient) &&
                              g.z < kZGrowing;
    const bool usable = std::isfinite(g.overall.se) && std::isfinite(g.recent.se) &&
                        g.overall.points >= 3;
    if (usable && (g.verdict == Verdict::growing || inconclusive)) {
      ++pooled;
      s_all += g.overall.slope;
      v_all += g.overall.se * g.overall.se;
      s_rec += g.recent.slope;
      v_rec += g.recent.se * g.recent.se;
    }
  }
  const double se = std::sqrt(var);
  out.growth_bytes_per_s = rate;
  out.slope_low = rate - kZ95 * se;
  out.slope_high = rate + kZ95 * se;
  out.overall = {s_all, std::sqrt(v_all), pts_all};
  out.recent = {s_rec, std::sqrt(v_rec), pts_rec};

  double z_pooled = -std::numeric_limits<double>::infinity();
  if (pooled > 0) z_pooled = growth_z(z_of(out.overall), z_of(out.recent));
  const double p_pooled = pooled > 0 ? upper_tail(z_pooled) : 1.0;
  const double p_best = analysed > 0 && std::isfinite(best_growing_z)
                            ? std::min(1.0, static_cast<double>(analysed) * upper_tail(best_growing_z))
                            : 1.0;
  const double p = std::min(p_pooled, p_best);
  out.z = pooled > 0 ? z_pooled : best_growing_z;
  if (!std::isfinite(out.z)) out.z = 0;
  if (p <= upper_tail(kZGrowing)) {
    out.verdict = Verdict::growing;
    out.confidence = capped(1.0 - p);
    out.reason = p == p_pooled ? "keeps growing (pooled over processes)"
                               : "keeps growing (in at least one process)";
    return out;
  }

  // Not growing: the most common verdict among processes that have one.
  const Verdict order[] = {Verdict::plateau, Verdict::transient, Verdict::stable};
  std::size_t best_count = 0;
  Verdict best = Verdict::insufficient;
  for (Verdict v : order) {
    std::size_t c = 0;
    for (const GrowthResult& g : per_process) c += g.verdict == v;
    if (c > best_count) best_count = c, best = v;
  }
  out.verdict = best;
  if (best == Verdict::insufficient) {
    out.confidence = 0;
    out.reason = "no process has enough evidence";
    return out;
  }
  double conf = 0;
  for (const GrowthResult& g : per_process)
    if (g.verdict == best) {
      conf += g.confidence;
      out.reason = g.reason;
    }
  out.confidence = conf / static_cast<double>(best_count);
  return out;
}

}  // namespace leakwatch::analyze
