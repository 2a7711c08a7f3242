"""A plugin that leaks and is then dlclosed: its blocks stay live, and the
dumps written after the dlclose (here the final one) must still attribute
them to the plugin's function. Fails today: the shim writes only the
modules mapped at dump time, so those frames become [unknown 0x...]."""
import unittest

import lwtest
import test_dlopen


class Dlclose(test_dlopen.DlopenBase):
    def test_plugin_site_still_named_after_dlclose(self):
        # The plugin's leaked blocks outlive dlclose; the dumps written after
        # it must still attribute them to plugin_leak_alloc.
        paths = self.run_host("close")
        final = paths[-1]
        rep = lwtest.report_json([final])
        unknown = [s for s in rep["sites"] if s["frames"] and s["frames"][0]["function"].startswith("[unknown")]
        self.assertEqual([[f["function"] for f in s["frames"][:3]] for s in unknown], [],
                         "live blocks from the unloaded plugin lost their names in the final dump")
        self.assertTrue(lwtest.sites_with_function(rep, "plugin_leak_alloc"))


if __name__ == "__main__":
    unittest.main()
