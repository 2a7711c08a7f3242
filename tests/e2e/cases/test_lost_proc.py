"""A process whose /proc stops being its own after start still gets its
dumps, frames named, and the shim stays silent:
 - a program that mounts over /proc in a private mount namespace (as a
   sandbox does), and its fork child;
 - `unshare --pid --fork --mount-proc`, preloaded as a whole container's
   process tree is: its /proc becomes the new pid namespace's, where it
   has no pid (before, its final dump failed with "out of memory")."""
import os
import subprocess
import unittest

import lwtest
from test_container import require_unshare


class LostProc(lwtest.ShimTestCase):
    def test_a_mount_over_proc_after_start(self):
        self.check_leak_reported([lwtest.program("lost_proc"), "2500"])

    def test_a_chroot_after_start(self):
        """The dump directory is outside the new root: dumps still land in it."""
        jail = os.path.join(self.tmp, "jail")
        os.mkdir(jail)
        self.check_leak_reported([lwtest.program("lost_proc"), "2500", jail])
        self.assertEqual(os.listdir(jail), [], "nothing written inside the new root")

    def check_leak_reported(self, cmd):
        plain = lwtest.run_plain(cmd, timeout=60)
        if plain.returncode == 3:
            print("SKIP %s: %s" % (self.id(), plain.stderr.strip()), flush=True)
            self.skipTest(plain.stderr.strip())
        r = self.assertSameAsPlain(cmd, timeout=60, interval=0.25, sample_bytes=4096)
        self.assertIn(b"proc hidden", r.stdout)
        paths = self.assertDumpsValid(r, at_least=6)
        pids = {lwtest.dump_pid(p) for p in paths}
        self.assertEqual(len(pids), 2, "dumps of the parent and of its fork child: %s" % paths)
        rep = lwtest.report_json(self.dir)
        for proc in rep["processes"]:
            self.assertGreaterEqual(proc["dumps"], 3, proc)
        sites = lwtest.sites_with_function(rep, "lost_proc_leak")
        self.assertTrue(sites, "no site names lost_proc_leak: %s\n%s" % (
            sorted(lwtest.site_functions(rep))[:20], subprocess.run(
                [lwtest.CLI, "report", self.dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                timeout=120).stdout))
        leak = sites[0]
        self.assertEqual(leak["processes"], 2, leak)
        self.assertEqual(leak["verdict"], "growing", leak)
        main = [f for f in leak["frames"] if f.get("function") == "main"]
        self.assertTrue(main and main[0].get("module", "").endswith("lost_proc"), leak["frames"])

    def test_unshare_with_its_own_proc_preloaded(self):
        flags = ["--pid", "--fork", "--mount-proc"]
        require_unshare(self, flags)
        cmd = ["unshare", *flags, lwtest.program("simple_alloc"), "3000"]
        r = self.assertSameAsPlain(cmd, timeout=60)
        paths = self.assertDumpsValid(r, at_least=2)
        names = sorted(os.path.basename(p).split(".")[0] for p in paths)
        self.assertIn("unshare", names, "unshare's own final dump")
        self.assertIn("simple_alloc", names)
        self.assertFinalDumpLast(paths)


if __name__ == "__main__":
    unittest.main()
