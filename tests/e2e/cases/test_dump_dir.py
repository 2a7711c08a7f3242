"""A dump directory that cannot be written: one line on stderr, the program
runs unchanged; and once the directory becomes writable, periodic dumps
resume there."""
import os
import unittest

import lwtest


class DumpDir(lwtest.ShimTestCase):
    def test_dir_under_a_regular_file(self):
        blocker = os.path.join(self.tmp, "file")
        with open(blocker, "w") as f:
            f.write("not a directory\n")
        d = os.path.join(blocker, "dumps")  # ENOTDIR, even for root
        cmd = [lwtest.program("simple_alloc"), "600000"]  # ~0.5 s: several failed periodic dumps
        base = lwtest.run_plain(cmd)
        r = lwtest.run_shim(cmd, d, timeout=60, interval=0.05)
        self.assertEqual(r.returncode, base.returncode)
        self.assertEqual(r.stdout, base.stdout)
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("leakwatch: "), lines)
        self.assertIn(d, lines[0])
        self.assertEqual(open(blocker).read(), "not a directory\n")

    def test_resumes_when_directory_becomes_writable(self):
        d = os.path.join(self.tmp, "dumps")
        with open(d, "w") as f:  # a file where the directory should be
            f.write("x")
        b = self.start([lwtest.program("idle_wait")], dump_dir=d, interval=0.2)
        lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "idle_wait to start")
        b.wait_ticking(lambda: b"cannot write dumps" in b.stderr(), 30, "the shim to report the unwritable dir")
        os.remove(d)
        os.makedirs(d, exist_ok=True)  # exist_ok: the shim may create it first
        b.wait_ticking(lambda: len(lwtest.list_dumps(d)) >= 2, 30, "periodic dumps in %s" % d)
        b.send(b"ping\n")
        self.assertEqual(b.finish(timeout=60), 0, b.stderr())
        self.assertEqual(b.stdout(), b"ready\npong\nbye 0000000000000000\n")
        lines = b.stderr().decode().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all(line.startswith("leakwatch: ") for line in lines), lines)
        self.assertIn("cannot write dumps in %s" % d, lines[0])
        self.assertIn("again", lines[1])
        self.assertFinalDumpLast(self.assertDumpsValid(lwtest.list_dumps(d), at_least=2))


if __name__ == "__main__":
    unittest.main()
