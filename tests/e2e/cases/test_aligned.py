"""posix_memalign (valid and invalid alignments, EINVAL kept), aligned_alloc,
memalign, valloc, pvalloc, realloc growth of aligned blocks,
malloc_usable_size, reallocarray/calloc overflow (ENOMEM), realloc to 0.
With LEAKWATCH_SAMPLE_BYTES=1 every call takes the sampled path; the
program's checksums (contents, errno values, null results) must match a
run without the shim."""
import unittest

import lwtest


class Aligned(lwtest.ShimTestCase):
    def test_every_call_sampled(self):
        r = self.assertSameAsPlain([lwtest.program("aligned")], sample_bytes=1)
        self.assertFinalDumpLast(self.assertDumpsValid(r))

    def test_dense_sampling(self):
        # Below 64 KiB every free is looked up (dense mode), sampled or not.
        r = self.assertSameAsPlain([lwtest.program("aligned")], sample_bytes=4096)
        self.assertDumpsValid(r)

    def test_sparse_sampling(self):
        # From 64 KiB on (sparse mode) sampled blocks keep the alignment the
        # program asked for; frees and reallocs of blocks on the same pages
        # go through the lookup too.
        r = self.assertSameAsPlain([lwtest.program("aligned")], sample_bytes=65536)
        self.assertDumpsValid(r)

    def test_default_sampling(self):
        r = self.assertSameAsPlain([lwtest.program("aligned")])
        self.assertDumpsValid(r)


if __name__ == "__main__":
    unittest.main()
