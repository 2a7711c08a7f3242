"""How a process ends: a normal exit writes a final dump, marked final and
last; a SIGKILL at any moment (even in the middle of writing a dump)
leaves only complete, valid dumps: partial ones exist only as hidden temp
files, which are never counted as dumps."""
import ctypes
import os
import random
import re
import select
import struct
import time
import unittest

import lwtest

TEMP_NAME = re.compile(r"^\..*\.lwdump\.tmp$")
IN_CREATE = 0x100


class CreateWatch:
    """inotify on one directory: names of files created in it."""

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, os.fsencode(path), IN_CREATE) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def next_names(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            raise AssertionError("no file created within %.0fs" % timeout)
        buf, names, off = os.read(self.fd, 65536), [], 0
        while off + 16 <= len(buf):
            _, _, _, n = struct.unpack_from("iIII", buf, off)
            names.append(buf[off + 16:off + 16 + n].rstrip(b"\0").decode())
            off += 16 + n
        return names

    def close(self):
        os.close(self.fd)


class ExitPaths(lwtest.ShimTestCase):
    def test_final_dump_at_normal_exit(self):
        # No thinning and no extra high-water dumps: every dump written stays
        # (retention's own holes are tested in test_long_runs).
        r = self.assertSameAsPlain([lwtest.program("simple_alloc"), "600000"], interval=0.05, sample_bytes=4096,
                                   max_dumps=100000, high_water=0)
        paths = self.assertDumpsValid(r, at_least=3)
        infos = [lwtest.inspect_info(p) for p in paths]
        self.assertEqual(len({i["pid"] for i in infos}), 1)
        self.assertFinalDumpLast(paths)
        self.assertEqual(sum(i["final"] for i in infos), 1)
        self.assertEqual(sorted(i["seq"] for i in infos), list(range(len(infos))))

    def test_final_dump_at_exit_with_status(self):
        # exit(3) from main, and from a second thread while main waits.
        for how in ("main", "thread"):
            with self.subTest(exit_from=how):
                d = os.path.join(self.tmp, how)
                r = self.assertSameAsPlain([lwtest.program("simple_alloc"), "1000", "3", how], dump_dir=d,
                                           expect_returncode=3, sample_bytes=1)
                self.assertFinalDumpLast(self.assertDumpsValid(r))

    def check_killed_dir(self, d, seed):
        """After a SIGKILL: every *.lwdump complete and valid (none final,
        sequence numbers without holes); anything else is one hidden temp
        file. Returns the number of temp files left."""
        names = os.listdir(d)
        dumps = lwtest.list_dumps(d)
        others = [n for n in names if os.path.join(d, n) not in dumps]
        self.assertEqual([n for n in others if not TEMP_NAME.match(n)], [], "seed %d" % seed)
        self.assertLessEqual(len(others), 1, "seed %d: more than one temp file %s" % (seed, others))
        infos = [lwtest.inspect_info(p) for p in dumps]
        self.assertFalse(any(i["final"] for i in infos), "seed %d: a final dump from a killed process" % seed)
        self.assertEqual(sorted(i["seq"] for i in infos), list(range(len(infos))), "seed %d" % seed)
        # The reporter reads the directory, temp file and all (a kill during
        # the very first dump leaves no dump to report on).
        if dumps:
            rep = lwtest.report_json(d)
            self.assertEqual(rep["dumps_read"], len(dumps), "seed %d" % seed)
        return len(others)

    def test_sigkill_at_random_moments(self):
        seed = int(os.environ.get("LW_TEST_SEED", time.time_ns() % 1000000))
        rng = random.Random(seed)
        for k in range(6):
            d = os.path.join(self.tmp, "kill%d" % k)
            b = self.start([lwtest.program("kill_churn"), "60"], dump_dir=d, name="kill%d" % k, sample_bytes=1,
                           interval=0.05, high_water=0)  # a high-water dump may replace the one before it
            lwtest.wait_until(lambda: b"ready\n" in b.stdout(), 30, "kill_churn to start")
            need = rng.randint(1, 4)
            lwtest.wait_until(lambda: len(lwtest.list_dumps(d)) >= need, 60, "%d dumps in %s" % (need, d))
            # A random moment within about two dump periods: the kill, not a
            # wait for anything, hence a plain sleep.
            time.sleep(rng.uniform(0, 0.1))
            self.assertEqual(b.kill(9), -9)
            self.assertEqual(b.stderr(), b"", "seed %d" % seed)
            self.check_killed_dir(d, seed)

    def test_sigkill_while_a_dump_is_being_written(self):
        # Kill as soon as the shim creates its temp file: most kills land
        # before the rename (how many is printed; timing decides, so it is
        # not asserted).
        seed = int(os.environ.get("LW_TEST_SEED", time.time_ns() % 1000000))
        rng = random.Random(seed)
        caught = 0
        kills = 8
        for k in range(kills):
            d = os.path.join(self.tmp, "write%d" % k)
            os.makedirs(d)
            w = CreateWatch(d)
            try:
                b = self.start([lwtest.program("kill_churn"), "60"], dump_dir=d, name="write%d" % k, sample_bytes=1,
                               interval=0.05, high_water=0)
                target, seen = rng.randint(1, 4), 0
                while seen < target:
                    seen += sum(1 for n in w.next_names(30) if TEMP_NAME.match(n))
                self.assertEqual(b.kill(9), -9)
            finally:
                w.close()
            self.assertEqual(b.stderr(), b"", "seed %d" % seed)
            caught += self.check_killed_dir(d, seed)
        print("\nseed %d: %d of %d kills left a partial dump behind" % (seed, caught, kills))


if __name__ == "__main__":
    unittest.main()
