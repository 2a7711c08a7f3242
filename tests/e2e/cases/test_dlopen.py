"""A plugin loaded with dlopen after start: a periodic dump taken after the
dlopen lists the plugin among its modules, and the report names the
plugin's allocating function (even once the plugin file is gone)."""
import os
import re
import shutil
import subprocess
import unittest

import lwtest

INTERVAL = 0.2


class DlopenBase(lwtest.ShimTestCase):
    """Builds the plugin; runs the host (shared with test_dlclose)."""

    def setUp(self):
        super().setUp()
        self.plugin = lwtest.build_shared(lwtest.program_source("plugin.c"), os.path.join(self.tmp, "liblwplugin.so"))

    def run_host(self, mode):
        """Runs dlopen_host plain, then under the shim until a periodic dump
        lists the plugin; returns the shim run's stdout."""
        cmd = [lwtest.program("dlopen_host"), self.plugin, mode]
        base = lwtest.run_plain(cmd, input=b"", timeout=60)
        self.assertEqual(base.returncode, 0, base.stderr)
        b = self.start(cmd, sample_bytes=4096, interval=INTERVAL)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "dlopen_host to load the plugin")
        seen = {}

        def periodic_dump_with_plugin():
            for p in lwtest.list_dumps(self.dir):
                if p not in seen:
                    seen[p] = lwtest.inspect_info(p)
                i = seen[p]
                if not i["final"] and self.plugin in i["modules"]:
                    return i
            return None

        b.wait_ticking(periodic_dump_with_plugin, 30, "a periodic dump listing %s" % self.plugin, tick=b"t")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertEqual(b.stdout(), base.stdout)
        self.assertEqual(b.stderr(), b"")
        paths = self.assertDumpsValid(lwtest.list_dumps(self.dir), at_least=2)
        self.assertFinalDumpLast(paths)
        return paths


class Dlopen(DlopenBase):
    def test_periodic_dump_lists_plugin_and_report_names_it(self):
        self.run_host("stay")
        os.remove(self.plugin)  # the report must not need the binary
        rep = lwtest.report_json(self.dir)
        sites = lwtest.sites_with_function(rep, "plugin_leak_alloc")
        self.assertEqual(len(sites), 1, "sites: %s" % [[f["function"] for f in s["frames"]] for s in rep["sites"]])
        leaf = sites[0]["frames"][0]
        self.assertEqual(leaf["function"], "plugin_leak_alloc")
        self.assertEqual(leaf["module"], self.plugin)
        self.assertGreater(sites[0]["live_bytes"], 0)


class DlopenLoop(lwtest.ShimTestCase):
    """A host that calls dlopen(NULL) / RTLD_NOLOAD and dlclose around every
    lookup loads nothing: the unwinder's list of objects must not be rebuilt
    (a /proc/self/maps read, and every cached rule dropped) for each call.
    Before the fix each sample after such a call re-read the maps: 30x the
    host's CPU time."""

    def maps_reads(self, iterations):
        out = os.path.join(self.tmp, "strace.%d" % iterations)
        env = lwtest.shim_env(self.dir, sample_bytes=4096)
        cmd = ["strace", "-f", "-qq", "-e", "trace=openat", "-o", out]
        for k in ("LD_PRELOAD", "LEAKWATCH_DIR", "LEAKWATCH_SAMPLE_BYTES"):
            cmd += ["-E", "%s=%s" % (k, env[k])]
        p = subprocess.run(cmd + [lwtest.program("dlopen_loop"), str(iterations)], env=lwtest.plain_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")
        with open(out) as f:
            return p.stdout, sum(1 for line in f if re.search(r'"/proc/[a-z-]+/maps"', line))

    def test_reopening_loaded_objects_does_not_rebuild_the_list(self):
        if not shutil.which("strace"):
            self.skipTest("strace is not installed")
        plain = lwtest.run_plain([lwtest.program("dlopen_loop"), "20000"], timeout=60)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        _, idle = self.maps_reads(0)
        stdout, busy = self.maps_reads(20000)
        self.assertEqual(stdout, plain.stdout)
        # 20,000 rounds of ~4.5 KiB at a 4 KiB mean: ~20,000 samples, each
        # after a dlopen/dlclose pair.
        self.assertLessEqual(busy - idle, 2, "maps read %d times with the loop, %d without" % (busy, idle))

    def test_dlerror_is_what_the_host_would_see(self):
        cmd = [lwtest.program("dlerror_order")]
        plain = lwtest.run_plain(cmd, timeout=60)
        shim = lwtest.run(cmd, self.dir, timeout=60)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertIn(b"cannot open shared object file", plain.stdout)
        self.assertEqual((shim.returncode, shim.stdout, shim.stderr), (0, plain.stdout, b""))


if __name__ == "__main__":
    unittest.main()
