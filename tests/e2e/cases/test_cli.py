"""The reporter's command line: `run` passes the program's status through,
`--fail-on-growth` is a CI gate with its own exit code (86), and bad input
gets one clear line and a non-zero status, never a crash."""
import os
import signal
import subprocess
import unittest

import lwtest


def cli(*args, timeout=120, **kw):
    return subprocess.run([lwtest.CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)


class Run(lwtest.ShimTestCase):
    def test_fail_on_growth_is_a_ci_gate(self):
        p = cli("run", "--dir", self.dir, "--interval", "0.2", "--sample-bytes", "8192", "--fail-on-growth", "--",
                lwtest.program("three_leaks"), "5")
        self.assertEqual(p.returncode, 86, p.stderr)
        self.assertIn("leak_fast", p.stderr)
        self.assertIn("leakwatch: gate: failing:", p.stderr)
        # The program's stdout is its own.
        self.assertTrue(p.stdout.startswith("leak_fast "), p.stdout)

    def test_threshold_above_the_leaks_passes(self):
        p = cli("run", "--dir", self.dir, "--interval", "0.2", "--sample-bytes", "8192",
                "--fail-on-growth=100000000", "--", lwtest.program("three_leaks"), "3")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_status_passes_through(self):
        p = cli("run", "--dir", self.dir, "--", "sh", "-c", "exit 3")
        self.assertEqual(p.returncode, 3, p.stderr)
        p = cli("run", "--dir", self.dir + "2", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, p.stderr)

    def test_missing_program(self):
        p = cli("run", "--dir", self.dir, "--", "/nonexistent/program")
        self.assertEqual(p.returncode, 127)
        self.assertIn("cannot run /nonexistent/program", p.stderr)

    def test_usage_errors(self):
        self.assertEqual(cli("run").returncode, 2)
        self.assertEqual(cli("report").returncode, 2)
        self.assertEqual(cli("report", self.tmp, "--format", "xml").returncode, 2)
        self.assertEqual(cli("nosuchcommand").returncode, 2)


class BadInput(lwtest.ShimTestCase):
    def test_missing_and_empty_directories(self):
        p = cli("report", os.path.join(self.tmp, "nope"))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        os.makedirs(self.dir)
        p = cli("report", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no dump files", p.stderr)

    def test_bad_files_are_skipped_with_one_warning_each(self):
        r = lwtest.run([lwtest.program("three_leaks"), "1"], self.dir, interval=0.2, sample_bytes=65536)
        good = r.dumps()
        self.assertGreaterEqual(len(good), 3)
        data = open(good[-1], "rb").read()
        bad = {
            "truncated": data[: len(data) // 2],
            "foreign": b"\x7fELF" + b"\0" * 100,
            "newer": data[:8] + b"\x02\x00" + data[10:],
            "empty": b"",
        }
        for name, content in bad.items():
            with open(os.path.join(self.dir, "bad-%s.lwdump" % name), "wb") as f:
                f.write(content)
        p = cli("report", self.dir, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        warnings = [l for l in p.stderr.splitlines() if "warning" in l]
        self.assertEqual(len(warnings), 4, p.stderr)
        self.assertTrue(any("truncated" in w for w in warnings), warnings)
        self.assertTrue(any("not a leakwatch dump" in w for w in warnings), warnings)
        self.assertTrue(any("newer" in w for w in warnings), warnings)
        for name in bad:
            p = cli("inspect", os.path.join(self.dir, "bad-%s.lwdump" % name))
            self.assertEqual(p.returncode, 1)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_diff_of_two_dumps(self):
        r = lwtest.run([lwtest.program("three_leaks"), "2"], self.dir, interval=0.25, sample_bytes=8192)
        dumps = r.dumps()
        p = cli("diff", dumps[1], dumps[-2])
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = lwtest.diff_rows(p.stdout)
        # In the first seconds the cache fills faster than the fastest leak:
        # both lead the diff, each with growth > 0; the block kept from the
        # start did not grow.
        top = " ".join(rows[:2])
        self.assertIn("leak_fast", top, p.stdout)
        self.assertIn("fill_cache", top, p.stdout)
        leak = [l for l in rows if "leak_fast" in l][0]
        self.assertFalse(leak.split()[0].startswith("-"), leak)
        # The block kept from the start did not change: not a row at all.
        self.assertFalse([l for l in rows if "keep_big" in l], rows)


if __name__ == "__main__":
    unittest.main()
