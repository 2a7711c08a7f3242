"""Days-long runs and restarts, compressed into seconds (short interval,
small retention), with the real preload: the kept dumps cover the whole
run; a process restarted after a SIGKILL is counted once per incarnation
(its rate is not doubled, its live bytes are the latest incarnation's);
concurrent replicas are a fleet, and each can be selected alone; a dump
can be asked for from outside, and the moment of the highest memory is
kept through thinning and a SIGKILL."""
import os
import re
import signal
import subprocess
import time
import unittest

import lwtest

RATE = 102400  # bytes per second the leak adds
TOLERANCE = 0.35


def cli(*args, timeout=300):
    return subprocess.run([lwtest.CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def leaked_rate(stdout):
    m = re.search(rb"leaked (\d+) bytes in ([0-9.]+) s", stdout)
    return int(m.group(1)) / float(m.group(2))


class LongRuns(lwtest.ShimTestCase):
    def leak_site(self, rep):
        sites = lwtest.sites_with_function(rep, "steady_leak_site")
        self.assertEqual(len(sites), 1, [s["frames"][0]["function"] for s in rep["sites"][:8]])
        return sites[0]

    def assertRate(self, got, truth, what):
        self.assertLess(abs(got - truth), TOLERANCE * truth, "%s: %.0f B/s, truth %.0f B/s" % (what, got, truth))

    def test_compressed_days_keep_the_whole_run(self):
        # 2 KiB: ~400 samples of the leak, so the rate from 16 thinned dumps is
        # known to ~10% (at 8 KiB one run in ~100 read 1.47x under load).
        # 160 dumps' worth (8 s at 0.05 s) into at most 16 files: a week of
        # one-minute dumps into 256, scaled down.
        r = lwtest.run_shim([lwtest.program("steady_leak"), str(RATE), "8"], self.dir, timeout=120, sample_bytes=2048,
                            interval=0.05, max_dumps=16, high_water=0)
        self.assertEqual(r.returncode, 0, r.stderr)
        infos = sorted((lwtest.inspect_info(p) for p in r.dumps()), key=lambda i: i["seq"])
        self.assertLessEqual(len(infos), 16)
        self.assertEqual(infos[0]["seq"], 0, "the start of the run is kept")
        self.assertTrue(infos[-1]["final"])
        self.assertGreater(infos[-1]["seq"], 60, "the run wrote many more dumps than it kept")
        times = [i["t"] for i in infos]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLessEqual(max(gaps), 4 * times[-1] / 16 + 0.3, "kept dumps at %s" % times)
        self.assertGreaterEqual(sum(1 for t in times if 2 < t < 6), 3, "the middle of the run: %s" % times)
        rep = lwtest.report_json(self.dir)
        site = self.leak_site(rep)
        self.assertEqual(site["verdict"], "growing")
        self.assertRate(site["growth_bytes_per_s"], leaked_rate(r.stdout), "rate from thinned dumps")
        (proc,) = rep["processes"]
        self.assertGreater(proc["retention_level"], 0)
        self.assertEqual(proc["dumps_written"], infos[-1]["seq"] + 1)

    def run_incarnation(self, seconds, kill_after=None, name="inc"):
        b = self.start([lwtest.program("steady_leak"), str(RATE), str(seconds)], sample_bytes=2048, interval=0.1,
                       name=name)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "%s to start" % name)
        if kill_after is None:
            self.assertEqual(b.finish(timeout=120), 0, b.stderr())
            return b
        lwtest.wait_until(lambda: len([p for p in lwtest.list_dumps(self.dir)
                                       if "steady_leak.%d." % b.pid in p]) >= int(kill_after / 0.1) - 2,
                          60, "%s's dumps" % name)
        b.kill(signal.SIGKILL)  # an OOM kill: no final dump
        return b

    def test_restart_counts_each_incarnation_once(self):
        first = self.run_incarnation(30, kill_after=3, name="first")
        start2 = time.time()
        second = self.run_incarnation(4, name="second")
        truth = leaked_rate(second.stdout())
        rep = lwtest.report_json(self.dir)
        self.assertEqual(len(rep["processes"]), 2)
        (svc,) = rep["services"]
        self.assertEqual(svc["incarnations"], 2)
        self.assertEqual(svc["at_once"], 1)
        by_inc = sorted(rep["processes"], key=lambda p: p["incarnation"])
        self.assertEqual([p["pid"] for p in by_inc], [first.pid, second.pid])
        self.assertFalse(by_inc[0]["exited_normally"])
        site = self.leak_site(rep)
        self.assertEqual(site["verdict"], "growing")
        # Once per incarnation: not the sum of two processes' rates.
        self.assertRate(site["growth_bytes_per_s"], truth, "per-incarnation rate")
        self.assertEqual(site["concurrent_processes"], 1)
        # Live now is the second incarnation's leak only (about 4 s of it).
        self.assertLess(site["live_bytes"], truth * 4 * 1.5)
        self.assertGreater(site["live_bytes"], truth * 4 * 0.5)
        # The span covers both incarnations, in wall-clock time.
        self.assertGreater(rep["duration_s"], 6)
        series = {rep["processes"][s["process"]]["pid"]: s["points"] for s in site["series"]}
        self.assertLess(series[first.pid][-1][0], series[second.pid][0][0] + 0.5, "incarnations one after another")
        # --since selects the second incarnation alone.
        rep2 = lwtest.report_json(self.dir, extra=["--since", "@%.3f" % start2])
        self.assertEqual([p["pid"] for p in rep2["processes"]], [second.pid])
        # The text report says what it did.
        p = cli("report", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 incarnations one after another", p.stdout)
        self.assertIn("incarnation 2", p.stdout)

    def test_fleet_of_replicas_and_selection(self):
        # 4 KiB: ~120 samples of the leak per replica, so one replica's own
        # rate is within the tolerance by a wide margin (at 8 KiB a 3-sigma
        # draw was 40% off).
        a = self.start([lwtest.program("steady_leak"), str(RATE), "5"], sample_bytes=4096, interval=0.1, name="a")
        b = self.start([lwtest.program("steady_leak"), str(RATE), "5"], sample_bytes=4096, interval=0.1, name="b")
        self.assertEqual(a.finish(timeout=120), 0, a.stderr())
        self.assertEqual(b.finish(timeout=120), 0, b.stderr())
        truth = (leaked_rate(a.stdout()) + leaked_rate(b.stdout())) / 2
        rep = lwtest.report_json(self.dir)
        (svc,) = rep["services"]
        self.assertEqual(svc["at_once"], 2)
        site = self.leak_site(rep)
        self.assertEqual(site["concurrent_processes"], 2)
        self.assertRate(site["growth_bytes_per_s"], truth, "per process")
        self.assertRate(site["fleet_growth_bytes_per_s"], 2 * truth, "fleet")
        # Each replica alone, by pid and by instance.
        one = lwtest.report_json(self.dir, extra=["--pid", str(a.pid)])
        self.assertEqual([p["pid"] for p in one["processes"]], [a.pid])
        self.assertRate(self.leak_site(one)["growth_bytes_per_s"], leaked_rate(a.stdout()), "replica a")
        inst = rep["processes"][[p["pid"] for p in rep["processes"]].index(b.pid)]["instance"]
        one = lwtest.report_json(self.dir, extra=["--instance", inst])
        self.assertEqual([p["pid"] for p in one["processes"]], [b.pid])
        # Host and executable select both; a foreign name selects nothing (one line, status 1).
        both = lwtest.report_json(self.dir, extra=["--host", os.uname().nodename, "--exe", "steady_*"])
        self.assertEqual(len(both["processes"]), 2)
        p = cli("report", self.dir, "--exe", "nginx")
        self.assertEqual(p.returncode, 1)
        self.assertIn("matches the selection", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_dump_on_request(self):
        os.makedirs(self.dir)
        # A trigger older than the process is not for it.
        self.assertEqual(cli("trigger", self.dir).returncode, 0)
        b = self.start([lwtest.program("idle_wait")], interval=3600)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "idle_wait to start")
        before = lwtest.list_dumps(self.dir)
        p = cli("trigger", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The process answers at its next allocations (within about a second).
        dumps = b.wait_ticking(lambda: [d for d in lwtest.list_dumps(self.dir) if d not in before], 30, "a dump on request")
        self.assertEqual(lwtest.inspect_info(dumps[0])["reason"], "trigger")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        reasons = sorted(lwtest.inspect_info(d)["reason"] for d in lwtest.list_dumps(self.dir))
        self.assertEqual(reasons, ["final", "trigger"], "one dump asked for, one at exit, none before")

    def test_high_water_dump_survives_thinning_and_a_kill(self):
        # Halfway through, the process holds 64 MiB more for a moment. With
        # at most 4 dumps kept over many, the moment of the highest memory
        # is still on disk after the process is SIGKILLed.
        b = self.start([lwtest.program("steady_leak"), "20000", "4", "64"], interval=0.05, max_dumps=4)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "steady_leak to start")
        lwtest.wait_until(lambda: b"peak released\n" in b.stdout(), 60, "the peak to pass")
        # A dump numbered past every one on disk now was written after the peak.
        seqs = lambda: [lwtest.dump_seq(p) for p in lwtest.list_dumps(self.dir)]
        released_at = max(seqs(), default=-1)
        lwtest.wait_until(lambda: max(seqs(), default=-1) > released_at, 60, "a dump past the peak")
        b.kill(signal.SIGKILL)
        infos = [lwtest.inspect_info(p) for p in lwtest.list_dumps(self.dir)]
        self.assertLessEqual(len(infos), 5)
        peak = max(i["rss"] for i in infos)
        self.assertGreater(peak, 60 << 20, "a kept dump saw the 64 MiB peak: %s" % [i["rss"] for i in infos])
        # The peak lasts 0.6 s: an evenly kept dump may fall inside it too,
        # but the first and the newest (past the peak) are lower.
        low = [i for i in infos if i["rss"] < peak - (32 << 20)]
        self.assertGreaterEqual(len(low), 2, "the peak is one moment, not the rest of the run: %s"
                                % [(round(i["t"], 2), i["rss"]) for i in infos])


if __name__ == "__main__":
    unittest.main()
