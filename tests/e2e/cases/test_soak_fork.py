"""fork() while other threads are inside the shim must not hang the child.

programs/soak_fork_unwind.c forks children (which allocate and exit) while
its other threads allocate from fresh short-lived threads, from a signal
handler and around dlopen/dlclose -- so at the instant of a fork another
thread is often in the middle of the shim's stack capture, holding the
unwinder's (libunwind's) internal locks or the loader's lock, or exiting
and handing its unwinder cache back under libunwind's pool lock. A child
that inherits such a lock locked hangs at its first sampled allocation
(each child allocates from its main thread and from a thread it starts).
Without the shim every child exits at once; under it, they must too.

On a hang the test prints the hung child's threads (gdb, when installed).
"""
import os
import signal
import subprocess
import unittest

import lwtest

def stacks_and_kill(pid):
    text = lwtest.thread_stacks(pid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return text


class ForkWhileUnwinding(lwtest.ShimTestCase):
    def setUp(self):
        super().setUp()
        self.plugin = lwtest.build_shared(lwtest.program_source("libs/soak_plugin.c"),
                                          os.path.join(self.tmp, "plugin.so"))

    def check(self, seconds, **shim_vars):
        cmd = [lwtest.program("soak_fork_unwind"), str(seconds), self.plugin]
        # Output goes to files (Background): a hung child keeps a pipe open.
        b = self.start(cmd, preload=bool(shim_vars), **shim_vars)
        try:
            b.proc.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            self.fail("soak_fork_unwind itself did not finish; its threads:\n%s" % stacks_and_kill(b.pid))
        b.finish(timeout=30)
        out = b.stdout().decode()
        if out.startswith("hung "):
            pids = [int(p) for p in out.split()[1:]]
            stacks = stacks_and_kill(pids[0])
            for pid in pids[1:]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.fail("%d forked children hung (%s); the threads of one:\n%s"
                      % (len(pids), shim_vars or "no shim", stacks))
        self.assertEqual(b.returncode, 0, "exit %d: %s" % (b.returncode, b.stderr().decode()[-2000:]))
        self.assertTrue(out.startswith("ok "), out)
        self.assertEqual(b.stderr(), b"")

    def test_plain(self):
        self.check(8)

    def test_every_allocation_sampled(self):
        self.check(15, sample_bytes=1, interval=0.5)
        self.assertDumpsValid(lwtest.list_dumps(self.dir), at_least=2)

    def test_sparse(self):
        self.check(15, sample_bytes=65536, interval=0.5)


if __name__ == "__main__":
    unittest.main()
