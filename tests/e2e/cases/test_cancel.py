"""A host that cancels its threads while they allocate: the shim's own I/O
(dumps, /proc reads, libunwind's address checks) contains cancellation
points, and a thread ended there would leave the shim's shared state held
-- the dump lock (no more dumps, no final dump), a claimed checkpoint (no
periodic dump for an hour), the fork barrier's count (every fork waits,
and children record no stacks). After 40 rounds of cancelled workers the
process must still fork cleanly, keep dumping, write its final dump, and
say nothing on stderr."""
import unittest

import lwtest


class Cancel(lwtest.ShimTestCase):
    def run_storm(self, **shim_vars):
        b = self.start([lwtest.program("cancel_storm"), "40"], max_dumps=16, **shim_vars)
        mine = lambda: [p for p in lwtest.list_dumps(self.dir) if lwtest.dump_pid(p) == b.pid]
        b.wait_ticking(lambda: b"rounds done\n" in b.stdout(), 120, "the cancel rounds and the fork")
        # Dumps still come after the storm: a dump numbered past every one on disk now.
        newest = lambda: max((lwtest.dump_seq(p) for p in mine()), default=-1)
        after_storm = newest()
        b.wait_ticking(lambda: newest() > after_storm, 60, "a dump after the cancel rounds")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertTrue(b.stdout().endswith(b"rounds done\nbye\n"), b.stdout())
        self.assertEqual(b.stderr(), b"", "the shim should stay silent (a child that records no stacks says so)")
        self.assertFinalDumpLast(self.assertDumpsValid(mine()))

    def test_every_allocation_sampled(self):
        self.run_storm(sample_bytes=1, interval=0.05)

    def test_sparse_sampling(self):
        self.run_storm(sample_bytes=4096, interval=0.05)


if __name__ == "__main__":
    unittest.main()
