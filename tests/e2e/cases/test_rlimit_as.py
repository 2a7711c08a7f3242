"""Hosts under RLIMIT_AS (ulimit -v: a classic cap on a leaky process).
Every byte the shim reserves counts against the host's limit. The shim
reserved ~86 MiB (600 MiB when sampling every allocation) whatever the
limit: CPython under a 97 MiB limit could not start ("can't initialize
sys module"), and under 19 MiB a failed reservation was left mapped. Now
the shim takes at most an eighth of the limit (smaller tables when it must)
and stays off, saying so once, when even its smallest tables do not fit:
the host keeps at least seven eighths of the room it has without the shim."""
import re
import unittest

import lwtest

PYTHON = "/usr/bin/python3"


def limited(limit_mib, cmd, resource="as"):
    return ["prlimit", "--%s=%d" % (resource, limit_mib << 20), "--"] + cmd


class RlimitAs(lwtest.ShimTestCase):
    def room(self, limit_mib, leak_mib, dumps, resource="as", **shim_vars):
        """(plain room, shim room, shim peak minus plain peak, shim Run), in MiB."""
        cmd = limited(limit_mib, [lwtest.program("as_room"), str(leak_mib), "0"], resource)
        plain = lwtest.run_plain(cmd, timeout=120)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        r = lwtest.run_shim(limited(limit_mib, [lwtest.program("as_room"), str(leak_mib), str(dumps)], resource),
                            self.dir, timeout=120, match="as_room", interval=0.1, **shim_vars)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = re.search(rb"room_mib=(\d+) peak_kib=(\d+)", plain.stdout)
        s = re.search(rb"room_mib=(\d+) peak_kib=(\d+)", r.stdout)
        peak_delta = (int(s.group(2)) - int(p.group(2))) / 1024
        print("\nRLIMIT_%s %d MiB %s: room %s -> %s MiB, VmPeak +%.1f MiB"
              % (resource.upper(), limit_mib, shim_vars or "", p.group(1).decode(), s.group(1).decode(), peak_delta))
        return int(p.group(1)), int(s.group(1)), peak_delta, r

    def assertFair(self, limit_mib, plain_room, shim_room, peak_delta):
        share = limit_mib / 8
        self.assertGreaterEqual(shim_room, plain_room - share, "the shim took more than an eighth of the limit")
        self.assertLessEqual(peak_delta, share, "the shim's peak reservation passed an eighth of the limit")

    def test_room_enough_full_tables(self):
        plain, shim, peak, r = self.room(2048, 16, 3)
        self.assertFair(2048, plain, shim, peak)
        self.assertEqual(r.stderr, b"")
        self.assertDumpsValid(r, at_least=3)

    def test_tight_limit_smaller_tables(self):
        # 256 MiB: 32 MiB for the shim, well under its full 86 MiB.
        plain, shim, peak, r = self.room(256, 16, 3, sample_bytes=65536)
        self.assertFair(256, plain, shim, peak)
        self.assertEqual(r.stderr, b"")
        self.assertDumpsValid(r, at_least=3)
        rep = lwtest.report_json(self.dir)
        sites = lwtest.sites_with_function(rep, "site_")
        self.assertGreaterEqual(len(sites), 32, "the leak's sites are named with smaller tables")

    def test_every_allocation_mode_under_a_limit(self):
        # Dense mode reserves ~600 MiB at full size: under 512 MiB it must shrink.
        plain, shim, peak, r = self.room(512, 16, 2, sample_bytes=1)
        self.assertFair(512, plain, shim, peak)
        self.assertEqual(r.stderr, b"")
        self.assertDumpsValid(r, at_least=2)

    def test_data_limit_counts_too(self):
        # Since Linux 4.7 private writable mappings count against
        # RLIMIT_DATA (ulimit -d), the shim's noreserve tables included.
        plain, shim, peak, r = self.room(256, 16, 3, resource="data", sample_bytes=65536)
        self.assertGreaterEqual(shim, plain - 256 / 8, "the shim took more than an eighth of the data limit")
        self.assertEqual(r.stderr, b"")
        self.assertDumpsValid(r, at_least=3)

    def test_too_small_profiling_off_said_once(self):
        plain, shim, peak, r = self.room(96, 8, 0)
        self.assertEqual(r.stderr.count(b"leakwatch:"), 1, r.stderr)
        self.assertIn(b"RLIMIT_AS", r.stderr)
        self.assertIn(b"profiling is off", r.stderr)
        # Off means no tables kept: what is left is the loaded library and
        # its dependencies (libunwind, liblzma, libm: ~3 MiB of mappings).
        self.assertGreaterEqual(shim, plain - 4, "an off shim must not hold address space")
        self.assertEqual(lwtest.list_dumps(self.dir), [])

    def test_cpython_under_ulimit(self):
        # The old shim: "Fatal Python error: _PySys_InitCore" at 97 MiB.
        code = "x = [bytes(1000) for i in range(20000)]; print('ok', len(x))"
        for limit in (100, 160, 400):
            with self.subTest(limit_mib=limit):
                cmd = limited(limit, [PYTHON, "-c", code])
                plain = lwtest.run_plain(cmd, timeout=120)
                self.assertEqual(plain.returncode, 0, plain.stderr)
                r = lwtest.run_shim(cmd, self.dir, timeout=120, match="python3*")
                self.assertEqual((r.returncode, r.stdout), (plain.returncode, plain.stdout), r.stderr)
                self.assertLessEqual(r.stderr.count(b"leakwatch:"), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
