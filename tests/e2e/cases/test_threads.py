"""8 threads allocating and freeing concurrently, three of them exiting
early (returning, pthread_exit, with thread-exit destructors that free),
under the shim with every allocation sampled and with default sampling."""
import unittest

import lwtest

OPS = 20000


def expected_thread_leak_bytes(ops):
    # threads.cpp: thread i leaks (100 + i) bytes every 5000 ops (at most 16
    # times); threads 5..7 stop after ops / 4.
    total = 0
    for i in range(8):
        stop = ops // 4 if i >= 5 else ops
        total += (100 + i) * min(16, (stop + 4999) // 5000)
    return total


class Threads(lwtest.ShimTestCase):
    def run_threads(self, **shim_vars):
        r = self.assertSameAsPlain([lwtest.program("threads"), str(OPS)], timeout=180, **shim_vars)
        paths = self.assertDumpsValid(r)
        self.assertFinalDumpLast(paths)
        return paths

    def test_every_allocation_sampled(self):
        paths = self.run_threads(sample_bytes=1, interval=0.2)
        # The exact total is in the final dump: a report over the whole
        # directory takes live bytes at the last periodic dump, which may
        # come before a thread's last leak.
        rep = lwtest.report_json(paths[-1])
        sites = lwtest.sites_with_function(rep, "thread_leak")
        self.assertEqual(len(sites), 1, [s["frames"] for s in sites])
        # Every allocation is recorded with weight 1: the estimate is exact.
        self.assertEqual(sites[0]["live_bytes"], expected_thread_leak_bytes(OPS))
        self.assertEqual(sites[0]["frames"][0]["function"], "thread_leak")

    def test_default_sampling(self):
        self.run_threads(interval=0.2)

    def test_exit_while_threads_allocate(self):
        # main returns while four threads still allocate: the final dump is
        # written under their feet, with every allocation sampled and with
        # dumps every 50 ms.
        for s in (1, 65536):
            with self.subTest(sample_bytes=s):
                d = "%s/run%d" % (self.tmp, s)
                r = self.assertSameAsPlain([lwtest.program("threads"), "2000", "running"], dump_dir=d, timeout=60,
                                           sample_bytes=s, interval=0.05)
                self.assertFinalDumpLast(self.assertDumpsValid(r))


if __name__ == "__main__":
    unittest.main()
