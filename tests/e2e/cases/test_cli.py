"""The reporter's command line: `run` passes the program's status through,
`--fail-on-growth` is a CI gate with its own exit code (86), and bad input
gets one clear line and a non-zero status, never a crash."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
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
            # One major version past the writer's (the header's u16 at 8).
            "newer": data[:8] + struct.pack("<H", struct.unpack_from("<H", data, 8)[0] + 1) + data[10:],
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



def first_line(p):
    lines = p.stderr.splitlines()
    return lines[0] if lines else ""


class CommandLine(lwtest.ShimTestCase):
    """Every bad command line: status 2 and exactly one line saying what."""

    def test_every_error_is_one_exact_line(self):
        os.makedirs(self.dir)
        cases = [
            (["frob"], 2, "leakwatch: unknown command 'frob' (run, report, diff, inspect, trigger, serve, env-help; leakwatch --help)"),
            (["report"], 2, "leakwatch: report: no dump directory or files given (see leakwatch report --help)"),
            (["report", self.dir, "--format", "xml"], 2,
             "leakwatch: report: unknown format 'xml' (text, json, folded, html, pprof, prom)"),
            (["report", self.dir, "--bogus"], 2, "leakwatch: report: unknown option '--bogus' (see leakwatch report --help)"),
            (["report", self.dir, "--top", "0"], 2, "leakwatch: report: --top: 1 to 100000 sites"),
            (["report", self.dir, "--pid", "abc"], 2,
             "leakwatch: report: --pid: 'abc' is not a whole number (see leakwatch report --help)"),
            (["report", self.dir, "--instance", "xyz"], 2,
             "leakwatch: report: --instance: 'xyz' is not an instance id (16 hex digits) (see leakwatch report --help)"),
            (["report", self.dir, "--since", "yesterday"], 2,
             "leakwatch: report: --since: 'yesterday' is not a time (like 2026-12-06T10:00:00Z, @1765000000, or -2h "
             "for two hours ago) (see leakwatch report --help)"),
            (["report", "--root", "/nonexistent", self.dir], 2, "leakwatch: report: --root /nonexistent: No such file or directory"),
            (["report", self.dir, "--baseline", os.path.join(self.tmp, "none.txt")], 2,
             "leakwatch: report: --baseline is for the gate: add --fail-on-growth"),
            (["run"], 2, "leakwatch: run: no program given (leakwatch run [options] -- PROG ARGS...)"),
            (["run", "--sample-bytes", "abc", "--", "true"], 2,
             "leakwatch: run: --sample-bytes: 'abc' is not a byte count (like 4096, 64k, 16m, 1g) (see leakwatch run --help)"),
            (["run", "--interval", "0", "--", "true"], 2, "leakwatch: run: --interval: 0.05 to 86400 seconds"),
            (["run", "--fail-on-growth=fast", "--", "true"], 2,
             "leakwatch: run: --fail-on-growth: 'fast' is not a rate in bytes per second (like 10240, 200k, 1m) "
             "(see leakwatch run --help)"),
            (["diff"], 2, "leakwatch: diff: need two inputs: leakwatch diff A B"),
            (["inspect"], 2, "leakwatch: inspect: no dump given (leakwatch inspect DUMP...)"),
        ]
        for args, status, line in cases:
            with self.subTest(args=args):
                p = cli(*args)
                self.assertEqual(p.returncode, status, p.stderr)
                self.assertEqual(p.stderr.splitlines(), [line])
                self.assertEqual(p.stdout, "")

    def test_help_and_version(self):
        for cmd in ("run", "report", "diff", "inspect", "trigger", "serve", "env-help"):
            for flag in ("--help", "-h"):
                p = cli(cmd, flag)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(p.stdout.startswith("usage: leakwatch %s" % cmd), p.stdout)
                self.assertEqual(p.stderr, "")
        p = cli("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("exit statuses:", p.stdout)
        p = cli("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^leakwatch \d+\.\d+\.\d+ \(dump format \d+\.\d+, JSON schema \d+\)\n$")

    def test_missing_program_leaves_nothing_behind(self):
        tmp = os.path.join(self.tmp, "tmpdir")
        os.makedirs(tmp)
        p = cli("run", "--", "/nonexistent/prog", env=dict(os.environ, TMPDIR=tmp))
        self.assertEqual(p.returncode, 127)
        self.assertEqual(p.stderr.splitlines(), ["leakwatch: run: cannot run /nonexistent/prog: no such program"])
        self.assertEqual(os.listdir(tmp), [])

    def test_unreadable_dumps_say_why(self):
        # Dumps are 0600: someone else reading them gets the OS's reason and
        # the hint, not "no dump files".
        lwtest.run([lwtest.program("simple_alloc")], self.dir)
        os.chmod(self.tmp, 0o755)
        os.chmod(self.dir, 0o755)
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to read as another user")
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", lwtest.CLI]
        for args in (["report", self.dir], ["inspect", lwtest.list_dumps(self.dir)[0]]):
            p = subprocess.run(as_nobody + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertIn("Permission denied", p.stderr)
            self.assertIn("read them as the application's user, or as root", p.stderr)


class Outputs(lwtest.ShimTestCase):
    """One report of a program with several growing and stable sites, read
    in every format."""

    @classmethod
    def setUpClass(cls):
        cls.shared = tempfile.mkdtemp(prefix="lwcli-")
        cls.dumps = os.path.join(cls.shared, "dumps")
        r = lwtest.run([lwtest.program("three_leaks"), "3"], cls.dumps, interval=0.2, sample_bytes=8192)
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.shared, ignore_errors=True)

    def report(self, *args):
        p = cli("report", self.dumps, *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_json_ids_are_exact_and_shared_with_text_and_prom(self):
        rep = json.loads(self.report("--format", "json").stdout)
        self.assertRegex(rep["tool_version"], r"^leakwatch \d")
        self.assertIsInstance(rep["schema_version"], int)
        for p in rep["processes"]:
            self.assertRegex(p["instance"], r"^[0-9a-f]{16}$")
        ids = [s["id"] for s in rep["sites"]]
        for i in ids:
            self.assertRegex(i, r"^[0-9a-f]{16}$")
        self.assertEqual(len(set(ids)), len(ids))
        text = self.report("--top", "100").stdout
        prom = self.report("--format", "prom", "--top", "100").stdout
        for s in rep["sites"]:
            if s["verdict"] == "growing":
                self.assertIn(s["id"], text)
                self.assertIn('site="%s"' % s["id"], prom)

    def test_text_lists_growing_sites_by_rate_and_warns_on_stderr(self):
        with open(os.path.join(self.dumps, "junk.lwdump"), "wb") as f:
            f.write(b"not a dump")
        try:
            p = self.report()
        finally:
            os.unlink(os.path.join(self.dumps, "junk.lwdump"))
        self.assertNotIn("warning", p.stdout)
        self.assertIn("junk.lwdump", p.stderr)
        rates = []
        for line in p.stdout.splitlines():
            m = re.match(r"^growing\s+([\d.]+ [KMG]?i?B)/s", line)
            if m:
                rates.append(lwtest.parse_bytes(m.group(1)))
        self.assertGreaterEqual(len(rates), 3, p.stdout)
        self.assertEqual(rates, sorted(rates, reverse=True), p.stdout)
        self.assertNotRegex(p.stdout, r"\b1 (dumps|processes)\b")

    def test_top_is_honoured_by_every_format(self):
        rep = json.loads(self.report("--format", "json").stdout)
        growing = [s for s in rep["sites"] if s["verdict"] == "growing"]
        self.assertGreater(len(rep["sites"]), len(growing), "the test needs sites that do not grow")
        top = len(growing) + 1
        # json: the ranked sites, every growing one, and how many were left out.
        cut = json.loads(self.report("--format", "json", "--top", str(top)).stdout)
        self.assertEqual([s["id"] for s in cut["sites"]], [s["id"] for s in rep["sites"][:top]])
        self.assertEqual(cut["sites_omitted"], len(rep["sites"]) - top)
        self.assertEqual(rep["sites_omitted"], 0, "json lists every site unless --top says otherwise")
        # --top 1 never hides a growing site.
        one = json.loads(self.report("--format", "json", "--top", "1").stdout)
        self.assertEqual(len(one["sites"]), len(growing))
        # text: one row per site shown
        text = self.report("--top", str(top)).stdout
        shown = [l for l in text.splitlines() if re.match(r"^(growing|stable|plateau|insufficient|transient|shrinking)\s", l)]
        self.assertEqual(len(shown), top, text)
        # prom: one series per site shown
        prom = self.report("--format", "prom", "--top", str(top)).stdout
        self.assertEqual(len(re.findall(r"^leakwatch_site_live_bytes\{.*site=\"[0-9a-f]{16}\"", prom, re.M)), top, prom)
        # html: one table row per site shown
        html = self.report("--format", "html", "--top", str(top)).stdout
        rows = re.findall(r'<tr class="site" data-rank="\d+" data-site="([0-9a-f]{16})"', html)
        self.assertEqual(rows, [s["id"] for s in rep["sites"][:top]])
        # pprof: the samples of the sites shown only
        out = os.path.join(self.tmp, "p.pb.gz")
        os.makedirs(self.tmp, exist_ok=True)
        self.report("--format", "pprof", "--top", str(top), "--out", out)
        small = os.path.getsize(out)
        self.report("--format", "pprof", "--out", out)
        self.assertLess(small, os.path.getsize(out))


class Gate(lwtest.ShimTestCase):
    """--fail-on-growth never reports success blind: 0 clean, 86 a leak at
    or above the threshold, 87 when the run could not tell."""

    def gate(self, *cmd, extra=()):
        return cli("run", "--dir", self.dir, "--fail-on-growth", *extra, "--", *cmd)

    def gate_line(self, p):
        lines = [l for l in p.stderr.splitlines() if l.startswith("leakwatch: gate:")]
        self.assertEqual(len(lines), 1, p.stderr)
        return lines[0]

    def test_clean_program_passes(self):
        p = self.gate(lwtest.program("steady"), "6")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(self.gate_line(p), r"^leakwatch: gate: passed: no site grows at 16.0 KiB/s or faster \(detection floor ")

    def test_leaking_program_fails_naming_the_table_frame(self):
        p = self.gate(lwtest.program("three_leaks"), "3")
        self.assertEqual(p.returncode, 86, p.stderr)
        line = self.gate_line(p)
        m = re.search(r"site ([0-9a-f]{16}) (.+?)  \S+ grows at", line)
        rep = lwtest.report_json(self.dir)
        first = rep["sites"][0]  # the fastest (leak_fast, or fill_cache while the cache fills)
        self.assertEqual(first["verdict"], "growing")
        self.assertEqual(m.group(1), first["id"], "the failing line names the table's first site")
        self.assertIn(m.group(2), [f["function"] for f in first["frames"]])
        self.assertTrue(m.group(2) in p.stderr.split("leakwatch: gate:")[0], "the table shows the frame the gate names")
        # Accepting it in a baseline moves the gate on to the next one.
        baseline = os.path.join(self.tmp, "baseline.txt")
        with open(baseline, "w") as f:
            f.write("# known\n%s  leak_fast\n" % first["id"])
        p = cli("report", self.dir, "--fail-on-growth", "--baseline", baseline)
        self.assertEqual(p.returncode, 86, p.stderr)
        self.assertNotIn(first["id"], self.gate_line(p))
        self.assertIn("1 growing site accepted by the baseline", self.gate_line(p))
        with open(baseline, "w") as f:
            f.write("".join(s["id"] + "\n" for s in rep["sites"] if s["verdict"] == "growing"))
        p = cli("report", self.dir, "--fail-on-growth", "--baseline", baseline)
        self.assertIn(p.returncode, (0, 87), p.stderr)
        self.assertNotEqual(p.returncode, 86, p.stderr)

    def test_suffixes_are_the_same_everywhere(self):
        # One parser: a rate takes the suffixes a byte count does, and an
        # option's value may follow a space as well as '='.
        self.assertEqual(lwtest.run([lwtest.program("three_leaks"), "2"], self.dir, interval=0.2,
                                    sample_bytes=8192).returncode, 0)
        for spelling in (["--fail-on-growth=200k"], ["--fail-on-growth", "200k"], ["--fail-on-growth", "204800"],
                         ["--fail-on-growth=200k/s"], ["--fail-on-growth", "200KiB"]):
            with self.subTest(spelling=spelling):
                p = cli("report", self.dir, *spelling)
                self.assertEqual(p.returncode, 86, p.stderr)
                self.assertIn("(threshold 200 KiB/s)", self.gate_line(p))

    def test_too_short_is_inconclusive(self):
        p = self.gate(lwtest.program("three_leaks"), "0.5", extra=("--interval", "5"))
        self.assertEqual(p.returncode, 87, p.stderr)
        self.assertEqual(self.gate_line(p), "leakwatch: gate: inconclusive: 1 dump in the longest process "
                                            "(3 or more needed): run longer, or pass a shorter --interval")

    def test_too_coarse_is_inconclusive(self):
        p = self.gate(lwtest.program("three_leaks"), "2", extra=("--sample-bytes", "64m"))
        self.assertEqual(p.returncode, 87, p.stderr)
        self.assertRegex(self.gate_line(p), r"^leakwatch: gate: inconclusive: the detection floor .* is above the "
                                            r"threshold 16.0 KiB/s, .*--sample-bytes \S+ \S+ or less\)$")

    def test_gate_on_report_with_nothing_to_read(self):
        os.makedirs(self.dir)
        p = cli("report", self.dir, "--fail-on-growth")
        self.assertEqual(p.returncode, 87, p.stderr)
        self.assertEqual(p.stderr.splitlines()[-1], "leakwatch: gate: inconclusive: nothing was measured")


if __name__ == "__main__":
    unittest.main()
