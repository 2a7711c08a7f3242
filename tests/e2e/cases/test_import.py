"""Importing other tools' heap profiles: REAL dumps written by Debian's
jemalloc (MALLOC_CONF=prof:true,lg_prof_interval:20,...) and gperftools'
tcmalloc (HEAPPROFILE=..., HEAP_PROFILE_ALLOCATION_INTERVAL=...) from a
program that leaks ~1 MB/s (import_leaker), read by `leakwatch report` and
`leakwatch diff`: the leak must be `growing`, its leaf function named, its
rate close to the truth. Bad files get one warning each and are skipped.

Odds of a false failure: jemalloc samples every 4 KiB on average, so the
3 MB leaked over ~3 s are seen through ~750 samples (~4% relative error);
the 35% bound on the rate is many sigma away. gperftools records every
allocation (no sampling error).
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import lwtest

SECONDS = 3
TRUE_RATE = 1024 * 1000  # bytes/s leaked by import_leak_site


def find_library(name):
    """Path of a shared library by file name: the loader's cache, then the usual directories."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if os.path.exists(ldconfig):
        out = subprocess.run([ldconfig, "-p"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=60).stdout
        for line in out.splitlines():
            left, _, path = line.strip().partition(" => ")
            if left.split(" ")[0] == name and os.path.exists(path):
                return path
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def cli(*args, timeout=120):
    return subprocess.run([lwtest.CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


class ImportCase(lwtest.ShimTestCase):
    """Each class profiles one run of import_leaker (setUpClass), shared by its tests."""
    LIB = None

    @classmethod
    def setUpClass(cls):
        cls.lib = find_library(cls.LIB)
        cls.profile_dir = tempfile.mkdtemp(prefix="lwimport.")
        cls.skip_reason = None
        if not cls.lib:
            cls.skip_reason = "%s not installed" % cls.LIB
            return
        r = lwtest.run_plain([lwtest.program("import_leaker"), str(SECONDS)], env=cls.profiler_env(cls.profile_dir),
                             timeout=120)
        cls.run_result = r

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.profile_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        if self.skip_reason:
            self.skipTest(self.skip_reason)
        r = self.run_result
        if b"Invalid conf pair: prof" in r.stderr:
            self.skipTest("this jemalloc was built without --enable-prof: %s" % r.stderr.decode()[:200])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split(), ["leaked", str(1024 * 1000 * SECONDS)])
        self.dir = self.profile_dir

    def heap_files(self):
        files = sorted(os.path.join(self.dir, f) for f in os.listdir(self.dir) if f.endswith(".heap"))
        self.assertGreaterEqual(len(files), 6, files)
        return files

    def check_leak_found(self, rep, exact):
        growing = [s for s in rep["sites"] if s["verdict"] == "growing"]
        self.assertTrue(growing, "no growing site: %s" % [(s["verdict"], s["frames"][0]["function"])
                                                          for s in rep["sites"]])
        top = growing[0]
        self.assertEqual(top["frames"][0]["function"], "import_leak_site")
        self.assertTrue(top["frames"][0]["file"].endswith("import_leaker.c"), top["frames"][0])
        self.assertGreater(top["frames"][0]["line"], 0)
        self.assertIn("main", [f["function"] for f in top["frames"]])
        self.assertEqual(len(growing), 1, [s["frames"][0]["function"] for s in growing])
        self.assertLess(abs(top["growth_bytes_per_s"] - TRUE_RATE), 0.35 * TRUE_RATE, top["growth_bytes_per_s"])
        # The churned buffers are freed: never growing, and little live.
        for s in rep["sites"]:
            if s["frames"][0]["function"] == "import_churn":
                self.assertNotEqual(s["verdict"], "growing")
        # Live bytes at the last periodic dump: at most what leaked, and most of it.
        leaked = 1024 * 1000 * SECONDS
        self.assertLessEqual(top["live_bytes"], leaked * (1.0 if exact else 1.3))
        self.assertGreater(top["live_bytes"], leaked * 0.5)
        self.assertEqual(rep["warnings"], [])
        return top


class Jemalloc(ImportCase):
    LIB = "libjemalloc.so.2"  # Debian package libjemalloc2

    @staticmethod
    def profiler_env(d):
        return {"LD_PRELOAD": find_library("libjemalloc.so.2"),
                "MALLOC_CONF": "prof:true,lg_prof_interval:20,lg_prof_sample:12,prof_prefix:%s/jeprof" % d}

    def profile(self):
        files = self.heap_files()
        with open(files[0]) as f:
            self.assertTrue(f.readline().startswith("heap_v2/4096"))
        return files

    def test_report_finds_the_leak(self):
        files = self.profile()
        rep = lwtest.report_json(self.dir)
        self.check_leak_found(rep, exact=False)
        self.assertEqual(rep["dumps_read"], len(files))
        (proc,) = rep["processes"]
        self.assertEqual(proc["sample_bytes"], 4096)
        self.assertEqual(str(proc["pid"]), os.path.basename(files[0]).split(".")[1])
        self.assertTrue(proc["executable"].endswith("import_leaker"), proc["executable"])
        self.assertGreater(proc["duration_s"], SECONDS * 0.5)
        # The other formats work on imported profiles too.
        p = cli("report", self.dir, "--format", "folded")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("main;import_leak_site ", p.stdout)

    def test_diff_of_two_profiles(self):
        files = self.profile()
        p = cli("diff", files[0], files[-1])
        self.assertEqual(p.returncode, 0, p.stderr)
        first_row = lwtest.diff_rows(p.stdout)[0]
        self.assertIn("import_leak_site", first_row)

    def test_bad_files_are_skipped_with_one_warning_each(self):
        files = self.profile()
        with open(files[-1]) as f:
            text = f.read()
        bad = {
            "truncated.heap": text[: len(text) // 3],
            "garbage.heap": "heap_v2/4096\n@ 0xzz\n  t*: 1: 2 [0: 0]\n",
            "hostile.heap": "heap_v2/4096\n@ 0x1\n  t*: 99999999999999999999999: 1 [0: 0]\n\nMAPPED_LIBRARIES:\n",
            "huge-line.heap": "heap_v2/4096\n@ " + "0x1 " * 400000 + "\n",
        }
        other = os.path.join(self.tmp, "bad")
        os.makedirs(other)
        for name, body in bad.items():
            with open(os.path.join(other, name), "w") as f:
                f.write(body)
        p = cli("report", self.dir, other, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        warnings = [l for l in p.stderr.splitlines() if "warning: skipping" in l]
        self.assertEqual(len(warnings), len(bad), p.stderr)
        for name in bad:
            self.assertEqual(sum(name in w for w in warnings), 1, (name, warnings))

    def test_copied_files_without_times(self):
        files = self.profile()
        copy = os.path.join(self.tmp, "copy")
        os.makedirs(copy)
        for f in files:
            shutil.copy(f, copy)  # new, equal-ish times; force them equal
            os.utime(os.path.join(copy, os.path.basename(f)), (1700000000, 1700000000))
        p = cli("report", copy, "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("dumps taken as 1 s apart", p.stderr)
        rep = json.loads(p.stdout)
        self.assertEqual(rep["sites"][0]["frames"][0]["function"], "import_leak_site")
        self.assertEqual(rep["sites"][0]["verdict"], "growing")


class Gperftools(ImportCase):
    LIB = "libtcmalloc.so.4"  # Debian package libgoogle-perftools4

    @staticmethod
    def profiler_env(d):
        return {"LD_PRELOAD": find_library("libtcmalloc.so.4"), "HEAPPROFILE": os.path.join(d, "prof"),
                "HEAP_PROFILE_ALLOCATION_INTERVAL": "1048576"}

    def profile(self):
        files = self.heap_files()
        with open(files[0]) as f:
            self.assertTrue(f.readline().startswith("heap profile:"))
        return files

    def test_report_finds_the_leak(self):
        files = self.profile()
        rep = lwtest.report_json(self.dir)
        self.check_leak_found(rep, exact=True)
        self.assertEqual(rep["dumps_read"], len(files))
        (proc,) = rep["processes"]
        self.assertEqual(proc["sample_bytes"], 1)  # every allocation recorded

    def test_named_files_and_diff(self):
        files = self.profile()
        rep = lwtest.report_json(files)
        self.check_leak_found(rep, exact=True)
        p = cli("diff", files[1], files[-1])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("import_leak_site", lwtest.diff_rows(p.stdout)[0])


if __name__ == "__main__":
    unittest.main()
