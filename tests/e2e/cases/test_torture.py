"""Torture: everything a host may do at once -- threads that fork (from
threads and from signal handlers), pthread_exit from main and from
workers, dlopen/dlclose with and without RTLD_DEEPBIND, allocating signal
handlers, realloc growing and shrinking, exit/_exit from any thread while
the others run on -- under the real preload, every allocation sampled and
default sampling alternating, for LW_TORTURE_SECONDS (default 60). Each
run must end as it does without the shim (its status is set by the seed's
ending), silently, with valid dumps; a run that does not end within its
time limit fails with every thread's stack (lwtest.communicate_watched)."""
import os
import time
import unittest

import lwtest

SECONDS = float(os.environ.get("LW_TORTURE_SECONDS", "60"))
RUN_MS = 400
# The run's ending, by seed % 4: exit(3) or _exit(4) from a worker, main's
# pthread_exit (the last worker returns: 0), main returns 5.
EXPECTED_STATUS = {0: 3, 1: 4, 2: 0, 3: 5}


class Torture(lwtest.ShimTestCase):
    def test_torture(self):
        plugin = lwtest.build_shared(lwtest.program_source("libs/soak_plugin.c"), os.path.join(self.tmp, "plugin.so"))
        deadline = time.monotonic() + SECONDS
        totals, runs, seed = {}, 0, 0
        while time.monotonic() < deadline or runs < 8:
            sample = 1 if seed % 2 == 0 else 524288
            d = os.path.join(self.tmp, "run%d" % seed)
            cmd = [lwtest.program("torture"), plugin, str(seed), str(RUN_MS)]
            r = lwtest.run_shim(cmd, d, timeout=60, sample_bytes=sample, interval=0.05)
            what = "seed %d, sampling %d" % (seed, sample)
            self.assertEqual(r.returncode, EXPECTED_STATUS[seed % 4], "%s: stderr %r" % (what, r.stderr))
            self.assertEqual(r.stderr, b"", what)
            fields = r.stdout.split()
            self.assertTrue(fields, "%s printed no counts" % what)
            for f in fields[1:]:
                k, v = f.decode().split("=")
                totals[k] = totals.get(k, 0) + int(v)
            if seed % 4 != 1:  # _exit leaves no final dump; the others do
                self.assertDumpsValid(r)
            if lwtest.list_dumps(d):
                lwtest.report_json(d)  # the reporter reads every run's dumps
            runs += 1
            seed += 1
        print("\ntorture: %d runs in %.0f s: %s" % (runs, SECONDS, " ".join("%s=%d" % kv for kv in sorted(totals.items()))))


if __name__ == "__main__":
    unittest.main()
