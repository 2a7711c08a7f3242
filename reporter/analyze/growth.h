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
// That bound is what every "above sampling noise" decision here uses. Noise is
// of two kinds, and both are modelled: turnover (memory freed and replaced, so
// each dump sees a fresh random set — independent noise around a level) and
// accumulation (objects that stay live stay sampled or unsampled for good, so a
// leak's estimate is a counting process with independent increments; its slope
// can only be known to about sqrt(new samples)).
//
// Method (per site):
//  * Windows: the whole run, and the recent half (dumps at or after the midpoint
//    in time; at least 3 dumps).
//  * Slope: Theil–Sen (median of the slopes of all pairs of dumps; windows of more
//    than 200 dumps use 200 evenly spread dumps for the pairs). Robust to spikes
//    and to single steps.
//  * Standard error of a slope: counting noise of the growth (S * slope * Q, Q the
//    exact variance factor of a least-squares slope over a process with
//    independent increments at the window's dump times) plus scatter noise
//    (robust residual spread, shrunk toward the model's S^2*k with a weight of two
//    dumps, so a short or too-smooth window cannot look more certain than the
//    sampling allows).
//  * Growth evidence z = min(max(z_all, z_recent), z_recent + 1), where z_x is
//    slope / standard error: either window must clear 3 sigma and the recent half
//    must clear 2 sigma on its own.
//
// Verdicts, decided in this order:
//  insufficient  fewer than 3 dumps, a zero time span, or fewer than 4 samples'
//                worth of live bytes at the peak (and no churn); also a site that
//                rose but whose recent trend cannot tell "still growing" from
//                "levelled off", or that shows an upward trend of 2..3 sigma.
//  growing       z >= 3, the level at the end is above the level at the start by
//                more than 3 sigma of sampling noise, and the growth has not
//                levelled off (levelled: recent slope + 2 SE is below 60% of the
//                run's average rate of rise).
//  transient     the peak is above the end level by more than 3 sigma, by at least
//                half the excursion and at least a quarter of the peak (a spike,
//                or memory released), or churn: the bytes allocated during the run
//                are >= 4x the peak live bytes and >= 10 samples' worth while live
//                bytes show no trend.
//  plateau       rose significantly (and by >= 10% of the end level), then levelled.
//  stable        none of the above: flat within noise.
//
// growth_bytes_per_s is the Theil–Sen slope of the whole run when the recent half
// agrees with it within 2 sigma of their difference (it is then the more precise
// estimate of a steady rate), otherwise the recent half's slope (the current
// rate, e.g. for a leak that started mid-run). slope_low/high = rate ± 1.96 SE.
//
// confidence (0..1, capped at 0.9999, since normal tails this far out are not to
// be trusted for sampled data):
//  growing                     Phi(z): one minus the one-sided p-value of "the site
//                              is not growing".
//  plateau/stable/transient    Phi(3 - z_recent): how sure we are that the recent
//                              growth is below what this run could flag.
//  insufficient                0: no claim is made.
// All are monotone in the evidence: more growth evidence never lowers a growing
// site's confidence and never raises a non-growing one's.
#pragma once

#include <cstddef>
#include <vector>

namespace leakwatch::analyze {

// One dump's view of one site. t_s: seconds since profiling started; live_bytes:
// the unbiased live estimate (0 when the site is absent from the dump: a real
// zero); live_samples: raw number of samples behind live_bytes (0 if unknown;
// the analysis then assumes small allocations); alloc_bytes: estimated
// cumulative bytes allocated by the site so far (non-decreasing).
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
  double slope = 0;    // bytes/s, Theil–Sen
  double se = 0;       // standard error under the noise model above
  std::size_t points = 0;
};

struct GrowthResult {
  Verdict verdict = Verdict::insufficient;
  double growth_bytes_per_s = 0;  // see "growth_bytes_per_s" above
  double confidence = 0;          // see "confidence" above
  double slope_low = 0, slope_high = 0;  // ~95% interval of growth_bytes_per_s
  // Added for renderers, combine() and debugging:
  double z = 0;         // growth evidence; growing needs z >= 3
  Trend overall;        // whole run
  Trend recent;         // recent half
  const char* reason = "";  // one short phrase saying why (static string)
};

// Analyzes one site's series. Points may come in any order; non-finite values
// are dropped and negative byte counts read as 0.
GrowthResult analyze_series(const std::vector<Point>& points, const SeriesOptions&);

// The slowest steady leak (bytes/s) this run would flag as growing about half of
// the time: the rate at which, with sampling mean sample_bytes, n_dumps evenly
// spaced dumps over duration_s seconds, and small allocations (no turnover, none
// live at the start), the expected growth evidence reaches the thresholds above.
// It scales as sample_bytes / duration_s and falls as dumps are added until the
// counting noise dominates (about 12 * S / duration for many dumps). A leak at 2x
// the floor is flagged most of the time, at 3x nearly always. Returns +infinity
// when nothing can be flagged (fewer than 3 dumps, no duration, no S).
double detection_floor_bytes_per_s(double sample_bytes, double duration_s, std::size_t n_dumps);

// Several processes of one build share a site: one row for the fleet.
//  * growth_bytes_per_s is the SUM of the per-process rates (the memory the fleet
//    gains per second); the interval adds the per-process variances.
//  * growing when either
//      - pooled evidence: summing slopes and variances over the processes that are
//        growing or individually inconclusive (stable/insufficient with z < 3 —
//        not plateau or transient, whose shape explains their trend), the pooled
//        z (same formula as per process) reaches 3; several replicas each leaking
//        too slowly to be flagged alone are flagged together; or
//      - one strong process: a growing process whose one-sided p-value, times the
//        number of analysed processes (Bonferroni), is still below that of 3 sigma,
//        so a large fleet of noisy processes does not turn chance into a verdict.
//    Confidence then is one minus the smaller of the two p-values, capped.
//  * otherwise the most common verdict among the processes that have one (ties:
//    plateau, transient, stable), with the mean confidence of those processes;
//    insufficient (confidence 0) when none has one.
// combine({r}) reproduces r's verdict and confidence.
GrowthResult combine(const std::vector<GrowthResult>& per_process);

}  // namespace leakwatch::analyze
