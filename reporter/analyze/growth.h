// reporter/analyze/growth.h — growth verdicts from one allocation site's timeline.
//
// Purpose: turn the per-dump estimates of one site (live bytes, live samples,
// cumulative allocated bytes) into a verdict — is this site still growing, how
// fast, how sure — and report how slow a leak the run could have seen at all.
// docs/growth-analysis.md explains the method for users; this header is the
// contract for callers.
//
// Thread-safety: every function is pure (no shared state); call them from any
// number of threads at once. They allocate (small vectors), and they never throw
// except std::bad_alloc.
//
// Noise model. The shim samples allocations by a Poisson process over bytes with
// mean S bytes (LEAKWATCH_SAMPLE_BYTES): an allocation of n bytes is sampled with
// probability p = 1 - exp(-n/S) and stands for w = n/p bytes. One sample's
// contribution to an estimate has variance w(w - n) <= S^2 (= S^2 for n << S,
// -> 0 for n >> S), so a live estimate B built from k samples has
//     Var(B) <= S^2 * k      (~= S * B when allocations are small next to S).
// Noise comes in two shapes, both modelled:
//  * counting: objects that stay live stay sampled (or not) for good, so a leak's
//    estimate grows by independent increments: variance S * (growth) per second.
//    Its slope is known to about sqrt(number of new samples), however many dumps.
//  * turnover: freed-and-replaced memory. Its variance is at most S^2 * k, and its
//    correlation time is the mean object lifetime, tau = live bytes / bytes freed
//    per second (Little's law; bytes freed = allocated - grown, from alloc_bytes),
//    or longer if the residuals' lag-1 autocorrelation says so (a site mixing
//    short- and long-lived objects wanders at the pace of the long-lived ones).
//    Both exponential and fixed (TTL-like) lifetimes are priced; the larger wins.
//    Short-lived churn (tau << dump interval) is white noise that averages out
//    over dumps; a slowly turning cache (tau ~ the run) wanders like a random walk
//    and can fake a trend — the model knows how much.
// The data may vary more than sampling explains (load-driven variation): an
// overdispersion factor, sum d^2 / sum E[d^2] over differences of successive
// slopes at two lags (so curvature of the trend does not count; each term capped
// at 16x its expectation so one spike cannot dominate), widens the error, never
// narrows it.
//
// Method (per site):
//  * Windows: the whole run, the early half (dumps up to the midpoint in time)
//    and the recent half (dumps from the midpoint), each at least 3 dumps.
//  * Slope: Theil–Sen (median of the slopes of all pairs of dumps; windows of more
//    than 200 dumps use 200 evenly spread dumps for the pairs). Robust to spikes
//    and to single steps.
//  * Standard error of a slope: the exact variance of a least-squares slope at the
//    window's dump times under the noise model above, times max(1, overdispersion).
//  * Growth evidence z, with z_x = slope / standard error: if the growth is steady
//    (early and recent slopes, from disjoint dumps, within 2 sigma of each other)
//    z = min(max(z_all, z_recent), z_recent + 1) — the whole run or the recent
//    half clears 3 sigma and the recent half clears 2 on its own; otherwise (a
//    fill that slowed, a warm-up, a late start) z = z_recent: the recent half
//    must clear 3 sigma alone.
//  * Levels: medians of ceil(n/10) (1..5) dumps at the start, a quarter and half
//    way through, and at the end of the run; their noise from the same model.
//
// Verdicts, decided in this order:
//  insufficient  fewer than 3 dumps, a zero time span, unknown S, or fewer than 4
//                samples' worth of live bytes at the peak (unless churn, below).
//  growing       z >= 3, the end level above the start level by more than 2 sigma,
//                and not levelled off. Levelled, after a rise of more than 3 sigma:
//                either no recent growth (z_recent < 2) with its upper bound
//                (slope + 2 SE) below 60% of the run's average rate of rise, or the
//                recent slope significantly (2 sigma) below 60% of the rate over
//                the run's second quarter — the second, so that a warm-up of up
//                to a quarter of the run does not mask a leak behind it.
//                (z >= 3 but the rise within noise: insufficient.)
//  transient     the peak is above the end level by more than 3 sigma, by at least
//                half of the excursion and a quarter of the peak: a spike, or
//                memory given back.
//  plateau       rose by more than 3 sigma and >= 10% of the end level, then
//                levelled off: a cache that filled, a one-time step up.
//  insufficient  rose but not levelled, and not growing either: cannot tell yet.
//  transient     churn: the bytes allocated during the run are >= 4x the peak live
//                bytes and >= 10 samples' worth, and live bytes show no trend.
//  insufficient  a weak upward trend (z >= 2).
//  stable        none of the above: flat within noise.
//
// growth_bytes_per_s is the Theil–Sen slope of the whole run when the recent half
// agrees with it within 2 sigma of their difference (it is then the more precise
// estimate of one steady rate), otherwise the recent half's slope (the current
// rate; for a leak that began within the recent half, it averages the flat part
// in and reads low). slope_low/high = rate +- 1.96 SE (infinite when not computed).
// Expected false alarms: about 1 in 1000 non-growing sites with noisy turnover
// (the price of a 3-sigma rule); none for sites whose samples never change.
//
// confidence (0..1, capped at 0.9999, since normal tails that far out are not to
// be trusted for sampled data):
//  growing                     Phi(z): one minus the one-sided p-value of "the site
//                              is not growing".
//  plateau/stable/transient    Phi(3 - z_recent): how sure we are that the recent
//                              growth is below what this run could flag.
//  insufficient                0: no claim is made.
// Both are monotone in the evidence: more growth evidence never lowers a growing
// site's confidence and never raises a non-growing one's.
#pragma once

#include <cstddef>
#include <vector>

namespace leakwatch::analyze {

// One dump's view of one site. t_s: seconds since profiling started; live_bytes:
// the unbiased live estimate (0 when the site is absent from the dump: a real
// zero); live_samples: raw number of samples behind live_bytes (0 if unknown;
// the analysis then assumes small allocations); alloc_bytes: estimated
// cumulative bytes allocated by the site so far (non-decreasing; 0 if unknown,
// and turnover is then priced at its worst-case lifetime).
struct Point {
  double t_s;
  double live_bytes;
  double live_samples;
  double alloc_bytes;
};

enum class Verdict { growing, plateau, stable, transient, insufficient };

// "growing", "plateau", "stable", "transient", "insufficient" (static strings).
const char* verdict_name(Verdict);

struct SeriesOptions {
  // S, LEAKWATCH_SAMPLE_BYTES of the run (1 = every allocation recorded). If it is
  // not a positive number, it is estimated as the smallest live_bytes/live_samples
  // seen (every sample weighs at least S, and about S for small allocations).
  double sample_bytes;
};

// Slope of live bytes over one window, with its standard error.
struct Trend {
  double slope = 0;  // bytes/s, Theil–Sen
  double se = 0;     // standard error under the noise model above
  std::size_t points = 0;
};

struct GrowthResult {
  Verdict verdict = Verdict::insufficient;
  double growth_bytes_per_s = 0;         // see "growth_bytes_per_s" above
  double confidence = 0;                 // see "confidence" above
  double slope_low = 0, slope_high = 0;  // ~95% interval of growth_bytes_per_s
  // Added for renderers, combine() and debugging:
  double z = 0;             // growth evidence; growing needs z >= 3
  Trend overall;            // whole run
  Trend early;              // early half (dumps up to the midpoint; at least 3)
  Trend recent;             // recent half (dumps from the midpoint; at least 3)
  const char* reason = "";  // one short phrase saying why (static string)
  double span_s = 0;        // time from the first to the last point
};

// Analyzes one site's series. Points may come in any order; non-finite values
// are dropped and negative byte counts read as 0.
GrowthResult analyze_series(const std::vector<Point>& points, const SeriesOptions&);

// The slowest steady leak (bytes/s) this run flags as growing half of the time:
// a small-allocation leak with nothing live at the first dump, sample_bytes = S,
// n_dumps evenly spaced over duration_s. Computed from the same model: the whole-
// run and recent-half z (means from the counting noise, Theil–Sen efficiency
// 0.93 calibrated by simulating the sampler, correlation from the nested
// windows) under the exact decision rule, times the chance the level test
// passes. About 15 * S / duration for 10 dumps or more (the leak must leave ~15
// samples); a leak at 2x the floor is flagged ~95% of the time, at 3x ~99%.
// With fewer than ~10 dumps it is conservative (flags more often than half).
// Lower it with a longer run or a smaller S; more dumps help sites that also
// churn (their white noise averages out) and make the trend checks more robust,
// but cannot beat the counting limit. +infinity when nothing can be flagged
// (fewer than 3 dumps, no duration, no S).
double detection_floor_bytes_per_s(double sample_bytes, double duration_s, std::size_t n_dumps);

// Several processes of one build share a site: one row for the fleet.
//  * growth_bytes_per_s is the SUM of the per-process rates (the memory the fleet
//    gains per second); the interval adds the per-process variances.
//  * growing when either
//      - pooled evidence: summing slopes and variances (processes taken as
//        independent) over those that are growing or individually inconclusive
//        (stable/insufficient with z < 3 — not plateau or transient, whose shape
//        explains their trend), the pooled z (same rule as per process) reaches 3;
//        several replicas each leaking too slowly to be flagged alone are flagged
//        together; or
//      - one strong process: a growing process whose one-sided p-value, times the
//        number of analysed processes (Bonferroni), is still below that of 3 sigma,
//        so a large fleet of noisy processes does not turn chance into a verdict.
//    Confidence then is one minus the smaller of the two p-values, capped.
//  * otherwise the most common verdict among the processes that have one (ties:
//    plateau, transient, stable), with the mean confidence of those processes;
//    insufficient (confidence 0) when none has one.
// The interval is infinite if any process has none (fewer than 3 dumps).
// combine({r}) reproduces r's verdict and confidence.
GrowthResult combine(const std::vector<GrowthResult>& per_process);

// One service restarted (an OOM-kill loop, a crash, a deploy of the same
// build): processes that ran one after another, each measuring the same
// per-process leak. Their rates are AVERAGED, not summed: each window's
// slope is the inverse-variance weighted mean of the incarnations' slopes,
// with the standard error of that mean; growing when the pooled evidence
// (the same rule as per process) reaches 3 sigma, or when one incarnation
// is growing strongly enough after the Bonferroni correction (as combine()).
// Otherwise the most common verdict, as combine(). growth_bytes_per_s is
// the incarnations' reported rates weighted by their spans (the growth of all
// of them over their total time; their plain mean when none has a finite
// interval). Not inverse-variance: a leak's counting noise grows with the
// estimated rate, so such weights favour whichever incarnation happened to
// read low (measured: -12% on average over two 4 s incarnations at 8 KiB).
// combine_incarnations({r}) reproduces r.
GrowthResult combine_incarnations(const std::vector<GrowthResult>& in_order);

}  // namespace leakwatch::analyze
