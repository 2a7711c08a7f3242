"""A program linked with jemalloc that also calls jemalloc's own API
(mallocx, dallocx, sdallocx), which the shim does not interpose, mixed
with malloc/free/realloc: all valid jemalloc use. The program checks its
block contents after every realloc and aborts on corruption.

Both tests fail today because of shim bugs (reported to the lead):
- a block freed behind the shim's back (dallocx) leaves a stale entry in
  the sampled set, and realloc() of whatever jemalloc later puts at that
  address trusts the stale size: it copies too few bytes;
- sdallocx(p, size, 0) of a sampled block: the shim really allocated it
  page-aligned, so jemalloc is told the wrong size class and its heap is
  corrupted.
"""
import unittest

import lwtest


class JemallocOwnApi(lwtest.ShimTestCase):
    def test_jemalloc_mallocx_and_dallocx_mixed_with_malloc(self):
        # A block freed with dallocx leaves a stale entry in the shim's
        # sampled set; when jemalloc hands the address out again through
        # mallocx, realloc() trusts the stale entry's size and copies too
        # few bytes. Deterministic with every allocation sampled.
        self.assertSameAsPlain([lwtest.program("jemalloc_linked"), "api"], sample_bytes=1)

    def test_jemalloc_sdallocx_of_malloc_blocks(self):
        # sdallocx(p, size, 0) of a block from malloc(size) is valid jemalloc
        # use; but a sampled block was really allocated page-aligned
        # (posix_memalign(4096, size)), so the size class jemalloc is told is
        # wrong and its heap is corrupted.
        self.assertSameAsPlain([lwtest.program("jemalloc_linked"), "sized"], sample_bytes=4096)



if __name__ == "__main__":
    unittest.main()
