"""A plugin loaded with dlopen after start: a periodic dump taken after the
dlopen lists the plugin among its modules, and the report names the
plugin's allocating function (even once the plugin file is gone)."""
import os
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


if __name__ == "__main__":
    unittest.main()
