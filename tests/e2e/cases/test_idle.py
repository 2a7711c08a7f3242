"""A process that is mostly blocked in read(): the shim has no thread of its
own, so its dumps are written by the process's own allocations (here the
`tick` command, 64 KiB allocated and freed) once the interval has passed;
what it leaks between commands shows up in the next dumps."""
import os
import re
import unittest

import lwtest


def seq_of(path):
    return int(re.search(r"\.(\d{6})\.lwdump$", path).group(1))


class Idle(lwtest.ShimTestCase):
    def test_mostly_idle_process_dumps_at_its_allocations(self):
        b = self.start([lwtest.program("idle_wait")], sample_bytes=1, interval=0.2)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "idle_wait to start")
        b.wait_ticking(lambda: len(lwtest.list_dumps(self.dir)) >= 3, 30, "3 periodic dumps")
        before = len(lwtest.list_dumps(self.dir))
        b.send(b"leak 300000\n")
        lwtest.wait_until(lambda: b"leaked 300000\n" in b.stdout(), 30, "the leak command to run")
        b.wait_ticking(lambda: len(lwtest.list_dumps(self.dir)) >= before + 2, 30, "dumps after the leak")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertEqual(b.stderr(), b"")
        base = lwtest.run_plain([lwtest.program("idle_wait")], input=b"leak 300000\n")
        self.assertEqual(b.stdout(), base.stdout)
        paths = self.assertDumpsValid(lwtest.list_dumps(self.dir), at_least=5)
        infos = [lwtest.inspect_info(p) for p in paths]
        self.assertGreaterEqual(sum(not i["final"] for i in infos), 4)
        self.assertFinalDumpLast(paths)
        rep = lwtest.report_json(self.dir)
        sites = [s for s in rep["sites"] if s["frames"] and s["frames"][0]["function"] == "idle_leak"]
        self.assertEqual(len(sites), 1)
        self.assertEqual(sites[0]["live_bytes"], 300000)

    def test_relative_dir_survives_chdir(self):
        # LEAKWATCH_DIR is relative to the directory the process started in,
        # even after the process changes directory.
        d = os.path.join(self.tmp, "rel", "dumps")
        b = self.start([lwtest.program("idle_wait")], dump_dir="rel/dumps", cwd=self.tmp, interval=0.1)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "idle_wait to start")
        b.send(b"cd /\n")
        lwtest.wait_until(lambda: b"cd ok\n" in b.stdout(), 30, "the cd command")
        n = len(lwtest.list_dumps(d))
        b.wait_ticking(lambda: len(lwtest.list_dumps(d)) >= n + 2, 30, "dumps in %s after chdir" % d)
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertEqual(b.stderr(), b"")
        self.assertFalse(os.path.exists("/rel/dumps") and os.listdir("/rel/dumps"))
        self.assertFinalDumpLast(self.assertDumpsValid(lwtest.list_dumps(d), at_least=3))

    def test_dump_retention(self):
        # LEAKWATCH_MAX_DUMPS=4: older dumps are thinned so at most 4 stay
        # (5 for an instant between a write and the thinning), the first kept.
        b = self.start([lwtest.program("idle_wait")], interval=0.05, max_dumps=4)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "idle_wait to start")
        for want in range(1, 25):
            paths = b.wait_ticking(lambda: [p for p in lwtest.list_dumps(self.dir) if seq_of(p) >= want] and
                                      lwtest.list_dumps(self.dir), 30, "dump #%d" % want)
            self.assertLessEqual(len(paths), 5, [os.path.basename(p) for p in paths])
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertEqual(b.stderr(), b"")
        paths = self.assertDumpsValid(lwtest.list_dumps(self.dir))
        self.assertLessEqual(len(paths), 4, [os.path.basename(p) for p in paths])
        self.assertEqual(seq_of(paths[0]), 0)
        self.assertTrue(lwtest.inspect_info(paths[-1])["final"])


if __name__ == "__main__":
    unittest.main()
