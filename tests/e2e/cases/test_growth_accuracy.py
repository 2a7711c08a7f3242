"""Issue 3's acceptance test: the growth analysis on known truth.

three_leaks runs three leaks at ~1 MB/s, ~400 KB/s and ~150 KB/s among
decoys (a cache that fills then stops, a 30 MiB transient spike, 60 MB/s
churn, a 24 MiB block kept from start). Exactly the three leaks must be
`growing`, in rate order, each rate within 25% of the rate the program
measured itself; no decoy may be `growing`.

Odds of a false failure: at S = 8 KiB the slowest leak gathers ~370
samples in 20 s, so its rate estimate has ~5% relative sampling error
(1 sigma); 25% is ~5 sigma (odds ~1e-6). The decoys are many sigma away
from the growing threshold.
"""
import os
import unittest

import lwtest

DURATION = 20


def site_function(site):
    # Names are demangled without parameters: "(anonymous namespace)::leak_fast".
    for f in site["frames"]:
        short = f["function"].split("::")[-1]
        if short in ("leak_fast", "leak_medium", "leak_slow", "fill_cache", "make_spike", "churn_block", "keep_big"):
            return short
    return None


class GrowthAccuracy(lwtest.ShimTestCase):
    def test_three_leaks_among_decoys(self):
        r = lwtest.run([lwtest.program("three_leaks"), str(DURATION)], self.dir, timeout=DURATION + 60,
                       sample_bytes=8192, interval=0.5)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        truth = {}
        for line in r.stdout.decode().splitlines():
            name, value = line.split()[0], line.split()[1]
            if name.startswith("leak_"):
                truth[name] = float(value)
        rep = lwtest.report_json(self.dir)
        growing = [s for s in rep["sites"] if s["verdict"] == "growing"]
        names = [site_function(s) for s in growing]
        summary = "\n".join("%s %s %.0f B/s conf %.3f" % (site_function(s), s["verdict"], s["growth_bytes_per_s"],
                                                          s["confidence"]) for s in rep["sites"] if site_function(s))
        print(summary)
        self.assertEqual(names, ["leak_fast", "leak_medium", "leak_slow"], summary)
        for s in growing:
            name = site_function(s)
            err = abs(s["growth_bytes_per_s"] - truth[name]) / truth[name]
            print("%s: estimated %.0f B/s, truth %.0f B/s, error %.1f%%" % (name, s["growth_bytes_per_s"],
                                                                          truth[name], 100 * err))
            self.assertLess(err, 0.25, "%s rate off by %.1f%%" % (name, 100 * err))
        verdicts = {site_function(s): s["verdict"] for s in rep["sites"] if site_function(s)}
        for decoy in ("fill_cache", "make_spike", "churn_block", "keep_big"):
            self.assertNotEqual(verdicts.get(decoy), "growing", "%s flagged as growing\n%s" % (decoy, summary))
        self.assertIsNotNone(rep["detection_floor_bytes_per_s"])
        self.assertLess(rep["detection_floor_bytes_per_s"], truth["leak_slow"])


if __name__ == "__main__":
    unittest.main()
