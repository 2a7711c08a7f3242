"""A SIGALRM handler that allocates, fired every 200 us by setitimer while
two threads allocate (the handler allocates only when it did not interrupt
an allocator call of its thread, as a careful program must with glibc):
no deadlock (bounded by a timeout), no crash, output unchanged, with every
allocation sampled, dense (S < 64 KiB), sparse and default sampling."""
import os
import unittest

import lwtest


class Signals(lwtest.ShimTestCase):
    def test_allocating_signal_handler(self):
        cmd = [lwtest.program("signal_alloc"), "80000"]
        for s in (1, 4096, 65536, 524288):
            with self.subTest(sample_bytes=s):
                d = os.path.join(self.tmp, "d%d" % s)
                r = self.assertSameAsPlain(cmd, dump_dir=d, sample_bytes=s, interval=0.1, timeout=120)
                self.assertFinalDumpLast(self.assertDumpsValid(r))


if __name__ == "__main__":
    unittest.main()
