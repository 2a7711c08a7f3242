"""A free the shim cannot see: libc's own free, found with dlsym on libc's
handle (what Python's ctypes.CDLL("libc.so.6").free calls). Sampled blocks
are blocks glibc handed out, so such a free works as without the shim (a
header of the shim's inside sampled blocks would make glibc abort here:
README, "How free stays cheap"), and the record it leaves behind goes when
glibc hands the address out again."""
import unittest

import lwtest


class BypassFree(lwtest.ShimTestCase):
    def test_every_block_sampled(self):
        r = self.assertSameAsPlain([lwtest.program("bypass_free"), "20000"], sample_bytes=1)
        self.assertFinalDumpLast(self.assertDumpsValid(r))
        rep = lwtest.report_json(self.dir)
        past = lwtest.sites_with_function(rep, "freed_past_the_shim")
        normal = lwtest.sites_with_function(rep, "freed_normally")
        self.assertTrue(past and normal, [s["frames"][0]["function"] for s in rep["sites"]])
        # 20,000 blocks of 64..364 bytes went past the shim: what is still
        # counted live is at most the last few, whose addresses glibc has
        # not handed out again.
        self.assertLess(sum(s["live_bytes"] for s in past), 4 * 364)
        self.assertEqual(sum(s["live_bytes"] for s in normal), 0)

    def test_default_sampling(self):
        self.assertSameAsPlain([lwtest.program("bypass_free"), "200000"])


if __name__ == "__main__":
    unittest.main()
