"""Issue 4 (d): the post-mortem after an OOM kill.

A program leaks ~8 MB/s in grow_until_oom() inside a memory cgroup limited
to 64 MiB with no swap, the way a container with `resources.limits.memory`
runs, until the kernel's OOM killer SIGKILLs it (no exit handler runs, no
final dump). What it wrote before must be enough: every dump valid, and
the report names grow_until_oom as `growing`.

cgroup v2 (memory.max, memory.swap.max, memory.events) and v1
(memory.limit_in_bytes, memory.memsw.limit_in_bytes, memory.oom_control)
are both handled; the test is skipped, with the reason printed, only when
neither memory controller can be used here. The cgroup is removed after
the process is gone.
"""
import os
import random
import subprocess
import time
import unittest

import lwtest
from test_container import ContainerTestCase, describe_site, report_text

LIMIT = 64 * 1024 * 1024
RATE = 8_000_000
CGROUP_ROOT = "/sys/fs/cgroup"


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, value):
    with open(path, "w") as f:
        f.write(value)


def _own_v1_path(controller):
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


class MemoryCgroup:
    """A fresh memory cgroup with a hard limit and no swap.
    create() returns None or why it cannot be made here."""

    def __init__(self, limit):
        self.limit = limit
        self.path = None
        self.version = None
        self.name = "lwtest-oom-%012x" % random.getrandbits(48)

    def create(self):
        v1_root = os.path.join(CGROUP_ROOT, "memory")
        if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
            return self._create_v2(CGROUP_ROOT)
        if os.path.exists(os.path.join(v1_root, "memory.limit_in_bytes")):
            return self._create_v1(v1_root)
        unified = os.path.join(CGROUP_ROOT, "unified")
        if os.path.exists(os.path.join(unified, "cgroup.controllers")):
            return self._create_v2(unified)
        return "no memory cgroup controller is mounted under %s" % CGROUP_ROOT

    def _create_v1(self, root):
        own = _own_v1_path("memory")
        parent = os.path.join(root, own.lstrip("/")) if own else root
        if not os.path.isdir(parent):
            parent = root
        try:
            os.mkdir(os.path.join(parent, self.name))
        except OSError as e:
            return "cannot create a memory cgroup (v1) under %s: %s" % (parent, e)
        self.path, self.version = os.path.join(parent, self.name), 1
        try:
            _write(os.path.join(self.path, "memory.limit_in_bytes"), str(self.limit))
        except OSError as e:
            return "cannot set memory.limit_in_bytes (v1): %s" % e
        memsw = os.path.join(self.path, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            _write(memsw, str(self.limit))  # no swap beyond the limit
        return None

    def _create_v2(self, root):
        if "memory" not in _read(os.path.join(root, "cgroup.controllers")).split():
            return "the cgroup v2 hierarchy at %s has no memory controller" % root
        control = os.path.join(root, "cgroup.subtree_control")
        if "memory" not in _read(control).split():
            try:
                _write(control, "+memory")
            except OSError as e:
                return "cannot enable the memory controller in %s: %s" % (control, e)
        try:
            os.mkdir(os.path.join(root, self.name))
        except OSError as e:
            return "cannot create a cgroup (v2) under %s: %s" % (root, e)
        self.path, self.version = os.path.join(root, self.name), 2
        try:
            _write(os.path.join(self.path, "memory.max"), str(self.limit))
        except OSError as e:
            return "cannot set memory.max (v2): %s" % e
        swap = os.path.join(self.path, "memory.swap.max")
        if os.path.exists(swap):
            _write(swap, "0")
        return None

    def procs_file(self):
        return os.path.join(self.path, "cgroup.procs")

    def oom_kills(self):
        """The cgroup's OOM kill count, or None if the kernel does not say."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in _read(os.path.join(self.path, name)).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except OSError:
            pass
        return None

    def remove(self):
        if not self.path or not os.path.isdir(self.path):
            return
        deadline = time.monotonic() + 20
        while True:
            try:
                pids = [int(p) for p in _read(self.procs_file()).split()]
            except OSError:
                pids = []
            for pid in pids:  # only processes this test put there
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class OomKill(ContainerTestCase):
    def setUp(self):
        super().setUp()
        self.cgroup = MemoryCgroup(LIMIT)
        self.addCleanup(self.cgroup.remove)

    def test_report_after_oom_kill(self):
        reason = self.cgroup.create()
        if reason:
            print("SKIP %s: %s" % (self.id(), reason), flush=True)
            self.skipTest(reason)
        env = lwtest.shim_env(self.dir, interval=0.2, sample_bytes=65536, match="container_oom_leaker")
        env["CT_PROCS"] = self.cgroup.procs_file()
        # Join the cgroup first, then become the program (its pid stays).
        cmd = ["sh", "-c", 'echo $$ > "$CT_PROCS" && exec "$@"', "sh", lwtest.program("container_oom_leaker"),
               str(RATE), "40"]
        started = time.monotonic()
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
        took = time.monotonic() - started
        self.assertEqual(p.returncode, -9, "expected an OOM kill (SIGKILL) in a %d MiB cgroup v%d, got %d: %s %s" % (
            LIMIT >> 20, self.cgroup.version, p.returncode, p.stdout, p.stderr))
        kills = self.cgroup.oom_kills()
        print("killed by SIGKILL after %.1fs in a %d MiB cgroup (v%d); oom_kill count: %s" % (
            took, LIMIT >> 20, self.cgroup.version, kills))
        if kills is not None:
            self.assertGreaterEqual(kills, 1, "SIGKILLed, but not by the OOM killer")
        self.assertEqual(p.stderr, b"", "the shim must be silent")
        # The process is gone: the cgroup can go now.
        self.cgroup.remove()

        paths = self.assertAllDumpsValid(self.dir, at_least=5)
        last = lwtest.inspect_info(paths[-1])
        self.assertFalse(last["final"], "a final dump after SIGKILL?")
        rep = lwtest.report_json(self.dir)
        self.assertEqual(rep["warnings"], [])
        self.assertEqual(len(rep["processes"]), 1)
        self.assertFalse(rep["processes"][0]["exited_normally"])
        site = self.assertLeakGrowing(rep, "grow_until_oom")
        print(describe_site(site))
        # Most of the limit was reached through that site, and its rate is the program's.
        self.assertGreater(site["live_bytes"], LIMIT * 0.5)
        self.assertLess(abs(site["growth_bytes_per_s"] - RATE) / RATE, 0.25, describe_site(site))
        text = report_text(self.dir)
        self.assertEqual(text.returncode, 0, text.stderr)
        print("--- leakwatch report %s ---\n%s" % (self.dir, text.stdout))


if __name__ == "__main__":
    unittest.main()
