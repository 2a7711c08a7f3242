"""A host under a seccomp filter that kills the process on system calls a
hardened service manager leaves out: systemd's SystemCallFilter=@system-
service does not list mincore, and its default action is SIGSYS. The shim
(and libunwind inside it) used mincore at every dump and process_vm_readv
for every guarded read: the host died with "Bad system call" before its
first dump. Under a filter that kills on mincore, msync, process_vm_readv,
process_vm_writev and ptrace, the host must run as without the shim, and
the dumps must still account for resident memory and name the stacks."""
import shutil
import unittest

import lwtest

DENY = "mincore,msync,process_vm_readv,process_vm_writev,ptrace"


class Seccomp(lwtest.ShimTestCase):
    def run_denied(self, cmd, **shim_vars):
        env = lwtest.shim_env(self.dir, interval=0.25, **shim_vars)
        wrapped = [lwtest.program("seccomp_deny"), DENY, "env"]
        wrapped += ["%s=%s" % (k, v) for k, v in env.items() if k == "LD_PRELOAD" or k.startswith("LEAKWATCH_")]
        r = lwtest.run_plain(wrapped + cmd, timeout=120)
        self.assertEqual(r.returncode, 0, "the host was killed or failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
        self.assertEqual(r.stderr, b"", "the shim must be silent")
        self.assertDumpsValid(lwtest.list_dumps(self.dir), at_least=2)
        return r

    def test_filter_kills_without_the_shim_nothing(self):
        # The filter works: a call on the list ends the process.
        r = lwtest.run_plain([lwtest.program("seccomp_deny"), "mincore", "python3", "-c",
                              "import mmap, ctypes; ctypes.CDLL(None).mincore(0, 4096, None)"], timeout=60)
        self.assertEqual(r.returncode, -31, r.stderr)  # SIGSYS

    def test_mmap_arena_accounted_under_the_filter(self):
        self.run_denied([lwtest.program("mmap_arena"), str(2 << 20), "3"])
        rep = lwtest.report_json(self.dir)
        proc = max((p for p in rep["processes"] if p["memory"]), key=lambda p: p["dumps"])
        parts = proc["memory"]["parts"]
        # Resident sizes come from the pagemap now: the arena's mapped and
        # touched chunks are resident, the shim's own tables too.
        self.assertGreater(parts["mmap"]["bytes"], 2 << 20, parts)
        self.assertGreater(parts["leakwatch"]["bytes"], 0, parts)
        sites = lwtest.sites_with_function(rep, "arena_grow")
        self.assertTrue(sites and sites[0]["frames"][0]["function"] == "[mmap]", sites[:1])

    @unittest.skipUnless(shutil.which("node"), "node is not installed (.ci/packages.txt installs nodejs)")
    def test_node_under_the_filter(self):
        # JIT frames have no unwind tables: libunwind's fallback and its
        # memory validation run under the filter too.
        self.run_denied(["node", lwtest.program_source("js_heap_leak.js"), "20000", "3"], sample_bytes=65536)
        rep = lwtest.report_json(self.dir)
        self.assertTrue(rep["sites"])


if __name__ == "__main__":
    unittest.main()
