"""Soak: the shim in a host that does everything at once, for minutes.

programs/soak_target.cpp runs for LW_SOAK_SECONDS (default 120; e.g.
LW_SOAK_SECONDS=600 for a longer soak, 20 for a quick look) with threads
starting and exiting, fork (children allocate and exit), dlopen/dlclose of
a small library this test builds, a SIGALRM handler that allocates
(setitimer every 250 us: a few hundred signals a second, as many as the
kernel delivers) and realloc storms. Three copies run side by side:
without the shim (the baseline), and under the shim in sparse mode
(LEAKWATCH_SAMPLE_BYTES=65536) and in dense mode (4096, every free probes
the sample set), both with LEAKWATCH_INTERVAL=0.5 and LEAKWATCH_MAX_DUMPS=64
(so retention thins the files as it goes).

Asserted:
- no deadlock: each run ends by its deadline (on a timeout the test prints
  every thread's stack with gdb, when gdb is installed);
- no crash, same exit status and no stderr output (the shim is silent);
- bounded memory: the process's RSS (VmRSS from /proc/PID/status, sampled
  every 0.5 s -- the dumps' shim_mapped_bytes counts reservations, not
  memory in use) does not keep growing: from the second quarter of the run
  to the last quarter, a shim run may grow at most 32 MiB more than the
  baseline did, not counting the shim's own bounded tables filling up
  (each dump says how much of them is resident); and its overhead over the
  baseline, tables and all, stays under a fixed budget for its mode;
- every dump is valid (`leakwatch inspect`), the parent's last dump is
  final, and the report reads them all.
The RSS figures are printed (stderr) for the record.
"""
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import unittest

import lwtest

SECONDS = float(os.environ.get("LW_SOAK_SECONDS", "120"))
MiB = 1024 * 1024
# RSS overhead budgets over the baseline (median of the second half).
# Dense mode's sample set is a fixed reservation that churn ends up
# touching entirely (128 MiB at 4096 bytes); sparse mode's is 8 MiB.
BUDGET = {"sparse": 48 * MiB, "dense": 200 * MiB}
GROWTH_LIMIT = 32 * MiB

def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Sampler(threading.Thread):
    """Samples a process's RSS every `period` seconds until it exits."""

    def __init__(self, pid, period=0.5):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples = pid, period, []
        self.stop = threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            r = rss_bytes(self.pid)
            if r is not None:
                self.samples.append((time.monotonic() - t0, r))
            self.stop.wait(self.period)


def window(samples, lo, hi):
    """Median RSS of the samples between fractions lo and hi of the run."""
    if not samples:
        return 0
    end = samples[-1][0]
    vals = [r for t, r in samples if lo * end <= t <= hi * end]
    return statistics.median(vals) if vals else 0


class Soak(lwtest.ShimTestCase):
    def test_soak(self):
        plugin = lwtest.build_shared(lwtest.program_source("libs/soak_plugin.c"),
                                     os.path.join(self.tmp, "soak_plugin.so"))
        cmd = [lwtest.program("soak_target"), str(SECONDS), plugin]
        runs = {
            "plain": self.start(cmd, preload=False, name="plain"),
            "sparse": self.start(cmd, dump_dir=os.path.join(self.tmp, "sparse"), name="sparse", interval=0.5,
                                 sample_bytes=65536, max_dumps=64),
            "dense": self.start(cmd, dump_dir=os.path.join(self.tmp, "dense"), name="dense", interval=0.5,
                                sample_bytes=4096, max_dumps=64),
        }
        samplers = {k: Sampler(b.pid) for k, b in runs.items()}
        for s in samplers.values():
            s.start()
        deadline = time.monotonic() + SECONDS + 90 + SECONDS / 2
        for name, b in runs.items():
            try:
                b.proc.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stacks = lwtest.thread_stacks(b.pid, with_children=True)
                for child in lwtest.children_of(b.pid):
                    os.kill(child, signal.SIGKILL)
                b.kill(signal.SIGKILL)
                self.fail("%s run did not finish within %.0f s of its %.0f s (deadlock?); its stacks:\n%s"
                          % (name, SECONDS + 90 + SECONDS / 2, SECONDS, stacks))
            samplers[name].stop.set()
            b.finish(timeout=60)
        for s in samplers.values():
            s.join(timeout=10)

        for name, b in runs.items():
            self.assertEqual(b.returncode, 0, "%s run failed (%s): %s" % (name, b.returncode, b.stderr()[-3000:]))
            self.assertTrue(b.stdout().startswith(b"soak ok "), "%s: %r" % (name, b.stdout()))
            self.assertEqual(b.stderr(), b"", "%s run printed on stderr" % name)

        base = samplers["plain"].samples
        base_q2, base_q4 = window(base, 0.25, 0.5), window(base, 0.75, 1.0)
        base_half = window(base, 0.5, 1.0)
        lines = ["soak %.0f s, VmRSS medians (MiB) over quarters 2 and 4, and peak:" % SECONDS,
                 "  plain   q2 %7.1f  q4 %7.1f  peak %7.1f  (%s)" % (base_q2 / MiB, base_q4 / MiB,
                                                                   max(r for _, r in base) / MiB,
                                                                   runs["plain"].stdout().decode().strip())]
        problems = []
        for name in ("sparse", "dense"):
            s = samplers[name].samples
            q2, q4, half = window(s, 0.25, 0.5), window(s, 0.75, 1.0), window(s, 0.5, 1.0)
            # The shim's own tables are bounded reservations that fill as
            # the run touches more of them (dense mode's sample set: 128
            # MiB); the dumps say how much of them is resident. That fill is
            # held to the overhead budget; the growth check is on the rest.
            parent = [p for p in lwtest.list_dumps(os.path.join(self.tmp, name))
                      if ".%d." % runs[name].pid in os.path.basename(p)]
            own = [(i["t"], i.get("shim_resident", 0)) for i in map(lwtest.inspect_info, parent)]
            own_growth = window(own, 0.75, 1.0) - window(own, 0.25, 0.5)
            growth = (q4 - q2) - own_growth - (base_q4 - base_q2)
            overhead = half - base_half
            lines.append("  %-7s q2 %7.1f  q4 %7.1f  peak %7.1f  overhead %+7.1f  shim tables %+6.1f  "
                         "growth vs plain %+6.1f  (%s)"
                         % (name, q2 / MiB, q4 / MiB, max(r for _, r in s) / MiB, overhead / MiB, own_growth / MiB,
                            growth / MiB, runs[name].stdout().decode().strip()))
            if growth > GROWTH_LIMIT:
                problems.append("%s: RSS grew %.1f MiB more than the baseline from q2 to q4" % (name, growth / MiB))
            if overhead > BUDGET[name]:
                problems.append("%s: RSS overhead %.1f MiB over the %.0f MiB budget"
                                % (name, overhead / MiB, BUDGET[name] / MiB))
        sys.stderr.write("\n".join(lines) + "\n")
        self.assertEqual(problems, [], "\n".join(lines))

        for name in ("sparse", "dense"):
            d = os.path.join(self.tmp, name)
            paths = lwtest.list_dumps(d)
            parent = [p for p in paths if ".%d." % runs[name].pid in os.path.basename(p)]
            self.assertGreaterEqual(len(parent), 16, "%s: parent dumps %d" % (name, len(parent)))
            self.assertLessEqual(len(parent), 64 + 1, "%s: retention kept %d parent dumps" % (name, len(parent)))
            self.assertGreater(len(paths) - len(parent), 0, "%s: no dumps from forked children" % name)
            r = subprocess.run([lwtest.CLI, "inspect", *paths], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, timeout=600)
            self.assertEqual(r.returncode, 0, "%s: invalid dumps: %s" % (name, r.stderr[-3000:]))
            last = lwtest.inspect_info(parent[-1])
            self.assertTrue(last["final"], "%s: the parent's last dump is not final" % name)
            rep = lwtest.report_json(d)
            self.assertGreaterEqual(len(rep["processes"]), 2)
            sys.stderr.write("  %s: %d dumps (%d of the parent), %d processes, %d sites\n"
                             % (name, len(paths), len(parent), len(rep["processes"]), len(rep["sites"])))


if __name__ == "__main__":
    unittest.main()
