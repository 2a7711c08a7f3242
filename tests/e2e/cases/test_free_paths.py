"""Every path a block can take to free or realloc, for every kind of
allocation, with all its usable bytes written: the program must run as
without the shim (same output, nothing on stderr: glibc aborts on a usable
size that promised too much), and every sampled block freed must leave the
shim's records (nothing live at exit from the program's site)."""
import unittest

import lwtest


class FreePaths(lwtest.ShimTestCase):
    def check(self, **shim_vars):
        r = self.assertSameAsPlain([lwtest.program("free_paths"), "20000"], timeout=180, **shim_vars)
        self.assertFinalDumpLast(self.assertDumpsValid(r))
        sites = lwtest.sites_with_function(lwtest.report_json(self.dir), "step")
        self.assertTrue(sites, "no site from the program's allocations")
        for s in sites:
            self.assertEqual(s["live_bytes"], 0, "freed blocks still counted live at %s" % s["id"])
        return sites

    def test_every_block_sampled(self):
        sites = self.check(sample_bytes=1)
        self.assertGreater(sum(s["alloc_bytes"] for s in sites), 100 << 20)

    def test_dense_sampling(self):
        self.check(sample_bytes=4096)

    def test_sparse_sampling(self):
        # Sampled blocks are few; their neighbours on marked granules take
        # the slow path too.
        self.check(sample_bytes=65536)

    def test_default_sampling(self):
        self.check()


if __name__ == "__main__":
    unittest.main()
