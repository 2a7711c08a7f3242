"""A server started as root whose workers drop to another user (nginx,
httpd and their official images run so): the workers' leak is reported,
with named frames and all of their memory, the master beside them.

Before: the dump directory the shim made was 0700 and made at the first
dump, which an idle master had not written yet, so the workers could not
write a dump at all ("Permission denied", once per worker); and a process
that changed user may not open its own /proc/self/mem or pagemap (setuid
makes it non-dumpable: its /proc files belong to root), so its frames went
unnamed and the shim's own memory read 0. The report also put a master
that dumps only at exit after its workers ("incarnations one after
another") and gave no detection floor (it asked the longest-lived process,
which had two dumps)."""
import os
import pwd
import stat
import unittest

import lwtest


def nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


@unittest.skipIf(os.geteuid() != 0, "needs root (the master drops its workers to another user)")
class DropPrivileges(lwtest.ShimTestCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)  # the workers must reach the dump directory

    def test_workers_that_change_user_are_profiled(self):
        uid = nobody()
        d = os.path.join(self.tmp, "made", "dumps")  # made by the shim, under umask 077
        old = os.umask(0o077)
        try:
            r = self.assertSameAsPlain([lwtest.program("drop_privileges"), str(uid), "2", "2500"], timeout=60,
                                       dump_dir=d, interval=0.25, sample_bytes=4096)
        finally:
            os.umask(old)
        self.assertIn(b"2 of 2 workers ok", r.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o1777)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(d)).st_mode), 0o755)
        paths = self.assertDumpsValid(r, at_least=8)
        owners = {}
        for p in paths:
            st = os.stat(p)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, p)
            owners.setdefault(lwtest.dump_pid(p), set()).add(st.st_uid)
        self.assertEqual(len(owners), 3, "the master and two workers: %s" % owners)
        self.assertEqual(sorted(tuple(u) for u in owners.values()), sorted([(0,), (uid,), (uid,)]), owners)

        rep = lwtest.report_json(d)
        sites = lwtest.sites_with_function(rep, "worker_leak")
        self.assertTrue(sites, sorted(lwtest.site_functions(rep))[:20])
        leak = sites[0]
        self.assertEqual((leak["verdict"], leak["processes"]), ("growing", 2), leak)
        names = [f.get("function") for f in leak["frames"]]
        self.assertEqual(names[0], "worker_leak", names)
        self.assertIn("main", names)
        (svc,) = rep["services"]
        self.assertEqual((svc["at_once"], svc["incarnations"]), (3, 1), "the master ran beside its workers: %s" % svc)
        self.assertTrue(rep["detection_floor_bytes_per_s"] is not None
                        and rep["detection_floor_bytes_per_s"] < 1e6, rep["detection_floor_bytes_per_s"])
        workers = [p for p in rep["processes"] if uid in owners.get(p["pid"], ())]
        self.assertEqual(len(workers), 2)
        for p in workers:
            own = p["memory"]["parts"]["leakwatch"]["bytes"]
            self.assertGreater(own, 64 * 1024, "the shim's own memory in a worker: %s" % p["memory"]["parts"])


if __name__ == "__main__":
    unittest.main()
