"""The dump directory as a whole stays within LEAKWATCH_DIR_MAX_BYTES.

A crash loop, a process per request or a CI job whose every command
inherits LD_PRELOAD leaves a few dumps per process; per-process retention
cannot bound that. Here 600 short-lived processes come and go beside a
long-lived service, all sharing a 1 MiB budget: the directory stays near
it, the processes that wrote least recently lose their dumps first (whole),
the live service keeps its whole retained history (dump #0 included), a
temp file left by a killed writer is removed, and files that are not dumps
are never touched. The previous shim let the directory grow to ~2.4 MiB."""
import os
import time
import unittest

import lwtest

BUDGET = 1 << 20
SLACK = 256 << 10  # scans are random, on average once per BUDGET/64 bytes on disk: e^-24 to get this far


def on_disk(path):
    st = os.stat(path)
    return max(st.st_size, st.st_blocks * 512)


def dump_bytes(d):
    total = 0
    for name in os.listdir(d):
        if name.endswith(".lwdump") or name.endswith(".lwdump.tmp"):
            try:
                total += on_disk(os.path.join(d, name))
            except FileNotFoundError:
                pass  # removed by a process trimming at this moment
    return total


class DirBudget(lwtest.ShimTestCase):
    def test_short_lived_processes_beside_a_live_service(self):
        os.makedirs(self.dir, exist_ok=True)
        # A temp file of a writer killed an hour ago (its pid, above pid_max, is not in use).
        stale = os.path.join(self.dir, ".killed.99999942.00000000000000aa.000003.lwdump.tmp")
        with open(stale, "wb") as f:
            f.write(b"x" * 3000)
        old = time.time() - 3600
        os.utime(stale, (old, old))
        foreign = [os.path.join(self.dir, n) for n in ("notes.txt", "killed.lwdump.bak")]
        for p in foreign:
            with open(p, "wb") as f:
                f.write(b"y" * 200000)
            os.utime(p, (old, old))

        live = self.start([lwtest.program("steady_leak"), "102400", "0"], sample_bytes=4096, interval=0.1,
                          max_dumps=8, dir_max_bytes="1m", name="live")
        prefix = "steady_leak.%d." % live.pid
        lwtest.wait_until(lambda: any(prefix in p for p in lwtest.list_dumps(self.dir)), 60, "the service's first dump")
        first = [p for p in lwtest.list_dumps(self.dir) if prefix in p][0]
        self.assertTrue(first.endswith(".000000.lwdump"), first)

        runs, pids, peak = 600, [], 0
        for i in range(runs):
            r = lwtest.run_shim([lwtest.program("simple_alloc")], self.dir, timeout=60, dir_max_bytes="1m")
            self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
            self.assertEqual(r.stderr, b"")
            pids.append(r.pid)
            if i % 25 == 0:
                peak = max(peak, dump_bytes(self.dir))
        self.assertEqual(live.finish(timeout=60), 0, live.stderr().decode()[-2000:])
        self.assertEqual(live.stderr(), b"")
        peak = max(peak, dump_bytes(self.dir))

        sys_note = "peak %d bytes of dumps on disk for a budget of %d" % (peak, BUDGET)
        print(sys_note)
        self.assertLessEqual(peak, BUDGET + SLACK, sys_note)
        self.assertFalse(os.path.exists(stale), "a killed writer's temp file was left")
        for p in foreign:
            self.assertTrue(os.path.exists(p), "%s was removed" % p)
        self.assertTrue(os.path.exists(first), "the live service lost its first dump")
        dumps = lwtest.list_dumps(self.dir)
        with_files = {int(os.path.basename(p).split(".")[-4]) for p in dumps}
        self.assertIn(live.pid, with_files)
        # The most recent processes are kept; the earliest went.
        self.assertTrue(set(pids[-20:]) <= with_files, "recent processes lost their dumps")
        self.assertLess(len(with_files & set(pids)), runs // 2)
        self.assertTrue(set(pids[:20]).isdisjoint(with_files), "the earliest processes kept their dumps")
        self.assertDumpsValid(dumps, at_least=20)
        rep = lwtest.report_json(self.dir)
        self.assertGreaterEqual(len(rep["processes"]), 21)


if __name__ == "__main__":
    unittest.main()
