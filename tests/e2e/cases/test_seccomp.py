"""Hosts under seccomp filters, as hardened services run. systemd's
SystemCallFilter=@system-service does not list mincore, and its default
action kills the process (SIGSYS); the shim (and libunwind inside it)
called mincore at every dump and process_vm_readv for every guarded read,
so such a host died with "Bad system call" before its first dump. Under a
filter that kills on the calls outside common allowlists, and under
systemd's own @system-service list (where systemd-analyze can print it),
the host must run as without the shim, and the dumps must still account
for resident memory and name the stacks."""
import os
import re
import shutil
import subprocess
import unittest

import lwtest

UNISTD = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
# Outside systemd's @system-service, or in @ipc/@debug that stricter
# profiles leave out.
DENY = ("mincore", "msync", "process_vm_readv", "process_vm_writev", "ptrace")
PYTHON = "/usr/bin/python3"


def syscall_numbers():
    with open(UNISTD) as f:
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR_(\w+) (\d+)", f.read())}


def expand_group(group, seen=None):
    """The system calls of a systemd group, its nested groups expanded."""
    seen = set() if seen is None else seen
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", group], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, timeout=60, check=True).stdout.decode()
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip().split(" ")[0]
        if not word or word.startswith("#"):
            continue
        if word.startswith("@"):
            if word not in seen:
                seen.add(word)
                calls |= expand_group(word, seen)
        else:
            calls.add(word)
    return calls


@unittest.skipUnless(os.path.exists(UNISTD), "no %s (linux-libc-dev)" % UNISTD)
class Seccomp(lwtest.ShimTestCase):
    def filtered(self, mode, names, cmd):
        nrs = syscall_numbers()
        return [lwtest.program("seccomp_run"), mode, ",".join(str(nrs[n]) for n in sorted(names) if n in nrs)] + cmd

    def run_filtered(self, mode, names, cmd, env=None, **shim_vars):
        """Runs cmd under the filter without the shim, then with it (through
        env(1), so that only cmd is preloaded); both must succeed alike."""
        plain = lwtest.run_plain(self.filtered(mode, names, cmd), env=env, timeout=120)
        self.assertEqual(plain.returncode, 0, "the filter is too strict for the program itself: %s" % plain.stderr[-2000:])
        shim_env = lwtest.shim_env(self.dir, interval=0.25, **shim_vars)
        preload = ["%s=%s" % (k, v) for k, v in shim_env.items() if k == "LD_PRELOAD" or k.startswith("LEAKWATCH_")]
        r = lwtest.run_plain(self.filtered(mode, names, ["env"] + preload + cmd), env=env, timeout=120)
        self.assertEqual(r.returncode, 0, "the host was killed or failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
        self.assertEqual(r.stderr, b"", "the shim must be silent")
        self.assertDumpsValid(lwtest.list_dumps(self.dir), at_least=2)
        return plain, r

    def assertArenaAccounted(self):
        rep = lwtest.report_json(self.dir)
        proc = max((p for p in rep["processes"] if p["memory"]), key=lambda p: p["dumps"])
        parts = proc["memory"]["parts"]
        # Resident sizes come from the pagemap: the arena's touched chunks
        # are resident, and so are the shim's own tables.
        self.assertGreater(parts["mmap"]["bytes"], 2 << 20, parts)
        self.assertGreater(parts["leakwatch"]["bytes"], 0, parts)
        sites = lwtest.sites_with_function(rep, "arena_grow")
        self.assertTrue(sites and sites[0]["frames"][0]["function"] == "[mmap]", sites[:1])

    def test_the_filter_kills(self):
        # A listed call ends the process: the filter is real.
        r = lwtest.run_plain(self.filtered("deny", ["mincore"], [PYTHON, "-c",
                             "import ctypes; ctypes.CDLL(None).mincore(0, 4096, None)"]), timeout=60)
        self.assertEqual(r.returncode, -31, r.stderr)  # SIGSYS

    def test_mmap_arena_under_a_deny_list(self):
        self.run_filtered("deny", DENY, [lwtest.program("mmap_arena"), str(2 << 20), "3"])
        self.assertArenaAccounted()

    def test_mmap_arena_under_a_filter_that_kills_on_ioctl(self):
        # Sandboxes allow a few ioctl requests, or none: the shim's
        # residency query (the PAGEMAP_SCAN ioctl) is not made under any
        # filter, its per-page pagemap reads are.
        self.run_filtered("deny", DENY + ("ioctl",), [lwtest.program("mmap_arena"), str(2 << 20), "3"])
        self.assertArenaAccounted()

    def test_no_directory_scan_under_a_filter(self):
        # The directory budget's scan (getdents64, unlinkat) is not made
        # under any filter. With a 1 MiB budget a scan is due on average
        # every 4 dumps (16 KiB of blocks); 24 dumps without one would be
        # a 0.1% chance, so a shim that scanned here would be killed.
        self.run_filtered("deny", DENY + ("getdents64", "getdents", "unlinkat"),
                          [lwtest.program("mmap_arena"), str(2 << 20), "6"], dir_max_bytes="1m")
        self.assertArenaAccounted()

    @unittest.skipUnless(shutil.which("node"), "node is not installed (.ci/packages.txt installs nodejs)")
    def test_node_under_a_deny_list(self):
        # JIT frames have no unwind tables: libunwind's fallback and its
        # memory validation run under the filter too.
        self.run_filtered("deny", DENY, ["node", lwtest.program_source("js_heap_leak.js"), "20000", "3"],
                          sample_bytes=65536)
        self.assertTrue(lwtest.report_json(self.dir)["sites"])

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed (.ci/packages.txt installs systemd)")
    def test_systemd_system_service_allowlist(self):
        allowed = expand_group("@system-service")
        self.assertIn("read", allowed)
        self.assertNotIn("mincore", allowed)
        self.run_filtered("allow", allowed, [lwtest.program("mmap_arena"), str(2 << 20), "3"])
        self.assertArenaAccounted()
        self.dir = os.path.join(self.tmp, "dumps-python")
        plain, r = self.run_filtered("allow", allowed, [PYTHON, lwtest.program_source("py_work.py"), "20"],
                                     env={"PYTHONMALLOC": "malloc"}, sample_bytes=65536)
        self.assertEqual(r.stdout, plain.stdout)
        self.assertTrue(lwtest.report_json(self.dir)["sites"])


if __name__ == "__main__":
    unittest.main()
