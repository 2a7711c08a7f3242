"""Configuration through the environment: invalid values give exactly one
"leakwatch: " line each and safe defaults (the program runs and is
profiled); LEAKWATCH_DISABLE and a non-matching LEAKWATCH_MATCH leave no
trace; LEAKWATCH_MATCH matches the executable's or argv[0]'s basename; a
shell started with LEAKWATCH_MATCH=prog profiles only prog."""
import os
import unittest

import lwtest

PROG = "simple_alloc"

BAD = [
    ("sample_bytes", "abc", "LEAKWATCH_SAMPLE_BYTES"),
    ("interval", "-1", "LEAKWATCH_INTERVAL"),
    ("max_frames", "9999", "LEAKWATCH_MAX_FRAMES"),
]


class Config(lwtest.ShimTestCase):
    def setUp(self):
        super().setUp()
        self.cmd = [lwtest.program(PROG), "3000"]
        self.base = lwtest.run_plain(self.cmd)
        self.assertEqual(self.base.returncode, 0)
        self.assertEqual(self.base.stderr, b"")

    def shim(self, cmd=None, dump_dir=None, **kw):
        r = lwtest.run_shim(cmd or self.cmd, dump_dir or self.dir, timeout=60, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.base.stdout)
        return r

    def assertNothingWritten(self, d):
        self.assertFalse(os.path.exists(d) and os.listdir(d), "files written: %s" % (os.path.exists(d) and os.listdir(d)))

    def test_each_bad_value_one_line(self):
        for key, value, var in BAD:
            with self.subTest(var=var, value=value):
                d = os.path.join(self.tmp, key)
                r = self.shim(dump_dir=d, **{key: value})
                lines = r.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                self.assertTrue(lines[0].startswith("leakwatch: "), lines)
                self.assertIn(var, lines[0])
                self.assertIn(value, lines[0])
                self.assertDumpsValid(r)

    def test_all_bad_values_one_line_each(self):
        r = self.shim(**{k: v for k, v, _ in BAD})
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(all(line.startswith("leakwatch: ") for line in lines), lines)
        for _, _, var in BAD:
            self.assertEqual(len([line for line in lines if var in line]), 1, (var, lines))
        paths = self.assertDumpsValid(r)
        # The safe defaults are in force.
        info = lwtest.inspect_info(paths[-1])
        self.assertEqual(info["sample_bytes"], 524288)
        self.assertIn("max 64 frames, interval 60s", info["text"])

    def test_disable_writes_and_prints_nothing(self):
        r = self.shim(disable=1, sample_bytes=1, interval=0.05)
        self.assertEqual(r.stderr, b"")
        self.assertNothingWritten(self.dir)

    def test_match_other_program_writes_nothing(self):
        r = self.shim(match="otherprog", sample_bytes=1, interval=0.05)
        self.assertEqual(r.stderr, b"")
        self.assertNothingWritten(self.dir)

    def test_match_executable_basename(self):
        for i, globs in enumerate([PROG, "simple_*", "nothing, %s" % PROG, "x*,simple_all?c"]):
            with self.subTest(match=globs):
                d = os.path.join(self.tmp, "m%d" % i)
                r = self.shim(dump_dir=d, match=globs)
                self.assertEqual(r.stderr, b"")
                self.assertDumpsValid(r)

    def test_match_argv0(self):
        # argv[0] differs from the executable's name: either may match.
        cmd = ["renamed_argv0", "3000"]
        exe = lwtest.program(PROG)
        for i, globs in enumerate(["renamed_argv0", "renamed_*", PROG]):
            with self.subTest(match=globs):
                d = os.path.join(self.tmp, "a%d" % i)
                r = self.shim(cmd=cmd, executable=exe, dump_dir=d, match=globs)
                self.assertEqual(r.stderr, b"")
                info = lwtest.inspect_info(self.assertDumpsValid(r)[-1])
                self.assertTrue(info["cmdline"].startswith("renamed_argv0"), info["cmdline"])
        d = os.path.join(self.tmp, "none")
        self.shim(cmd=cmd, executable=exe, dump_dir=d, match="renamed_other")
        self.assertNothingWritten(d)

    def test_shell_profiles_only_the_matching_child(self):
        script = "%s 3000; echo shell-done" % lwtest.program(PROG)
        cmd = ["/bin/sh", "-c", script]
        base = lwtest.run_plain(cmd)
        r = lwtest.run_shim(cmd, self.dir, timeout=60, match=PROG, sample_bytes="abc")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, base.stdout)
        # Only the profiled program warns, once; the shell stays silent.
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("LEAKWATCH_SAMPLE_BYTES", lines[0])
        paths = self.assertDumpsValid(lwtest.list_dumps(self.dir))
        exes = {os.path.basename(lwtest.inspect_info(p)["exe"]) for p in paths}
        self.assertEqual(exes, {PROG})


if __name__ == "__main__":
    unittest.main()
