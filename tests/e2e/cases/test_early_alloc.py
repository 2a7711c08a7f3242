"""Allocations before the shim is ready: from the program's .preinit_array
and constructors, from a preloaded library's constructor (loaded before and
after the shim), and through dlsym/dlerror (the loader allocating during
the shim's own bootstrap). The program must run exactly as without it."""
import os
import shutil
import tempfile
import unittest

import lwtest


class EarlyAlloc(lwtest.ShimTestCase):
    @classmethod
    def setUpClass(cls):
        cls.libdir = tempfile.mkdtemp(prefix="lwtest.early.")
        cls.lib = lwtest.build_shared(lwtest.program_source("libs/early_lib.c"), os.path.join(cls.libdir, "libearly.so"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.libdir, ignore_errors=True)

    def check(self, r, with_lib):
        self.assertIn(b"preinit checksum", r.stdout)
        self.assertIn(b"dlerror ok", r.stdout)
        self.assertEqual(b"library constructor checksum" in r.stdout, with_lib)
        self.assertFinalDumpLast(self.assertDumpsValid(r))

    def test_program_preinit_and_constructors(self):
        for s in (1, 4096, 524288):
            with self.subTest(sample_bytes=s):
                d = os.path.join(self.tmp, "d%d" % s)
                self.check(self.assertSameAsPlain([lwtest.program("early_alloc")], dump_dir=d, sample_bytes=s,
                                                  interval=0.1), False)

    def test_library_constructor_preloaded_before_shim(self):
        for s in (1, 524288):
            with self.subTest(sample_bytes=s):
                d = os.path.join(self.tmp, "d%d" % s)
                r = self.assertSameAsPlain([lwtest.program("early_alloc")], dump_dir=d, sample_bytes=s,
                                           preload="%s %s" % (self.lib, lwtest.SHIM), plain_preload=self.lib)
                self.check(r, True)

    def test_library_constructor_preloaded_after_shim(self):
        for s in (1, 524288):
            with self.subTest(sample_bytes=s):
                d = os.path.join(self.tmp, "d%d" % s)
                r = self.assertSameAsPlain([lwtest.program("early_alloc")], dump_dir=d, sample_bytes=s,
                                           preload="%s:%s" % (lwtest.SHIM, self.lib), plain_preload=self.lib)
                self.check(r, True)


if __name__ == "__main__":
    unittest.main()
