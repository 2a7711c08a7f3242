"""Programs linked with jemalloc and tcmalloc: the shim forwards to them
(proved inside the programs with the allocators' own introspection), the
programs run as without the shim, dumps are valid and the leak sites show
up in the report."""
import os
import unittest

import lwtest

LEAK_BYTES = 16 * 4000  # each program's *_leak_malloc; *_leak_new leaks 16 * 500 * 8 as well


class LinkedAllocators(lwtest.ShimTestCase):
    def check_program(self, name, prefix, args=()):
        cmd = [lwtest.program(name), *args]
        for s in (1, 4096, 65536, 524288):
            with self.subTest(sample_bytes=s):
                d = os.path.join(self.tmp, "d%d" % s)
                r = self.assertSameAsPlain(cmd, dump_dir=d, sample_bytes=s, timeout=120)
                self.assertFinalDumpLast(self.assertDumpsValid(r))
                rep = lwtest.report_json(d)
                for fn in (prefix + "_leak_malloc", prefix + "_leak_new"):
                    sites = [x for x in rep["sites"] if x["frames"] and x["frames"][0]["function"] == fn]
                    if s == 1:
                        self.assertEqual(len(sites), 1, fn)
                        self.assertEqual(sites[0]["live_bytes"], LEAK_BYTES, fn)
                    elif s == 4096:  # 4000-byte blocks at S=4096: 16 tries at p=0.62, all missed ~1e-7
                        self.assertTrue(sites, "%s missing at S=%d" % (fn, s))

    def test_jemalloc(self):
        self.check_program("jemalloc_linked", "jemalloc")

    def test_tcmalloc(self):
        self.check_program("tcmalloc_linked", "tcmalloc")


if __name__ == "__main__":
    unittest.main()
