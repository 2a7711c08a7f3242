"""Issue 4 (g): the Node.js seed scenario, a "pod" running node as PID 1.

programs/node_native_leak.js keeps Buffers (whose backing stores come
from node's native ArrayBuffer allocator, i.e. malloc, not the JS heap) at
a steady 512 KiB/s for 12 s. node runs in a PID + mount namespace with
the shim injected by environment variables only, matched by
LEAKWATCH_MATCH=node. The report must show a `growing` site whose frames
are node's native code, and the dumps' pid must be 1.
"""
import os
import shutil
import unittest

import lwtest
from test_container import MOUNT_NS, PID_NS, ContainerTestCase, describe_site, require_unshare, run_container

SECONDS = 12
RATE = 512 * 1024
SCRIPT = lwtest.program_source("node_native_leak.js")


def native_node_frame(frame):
    module = os.path.basename(frame.get("module") or "")
    return "node" in module  # the node executable or libnode.so.*


class NodeInAContainer(ContainerTestCase):
    def test_node_native_leak_as_pid_1(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            reason = "Node.js is not installed (node or nodejs on PATH)"
            print("SKIP %s: %s" % (self.id(), reason))
            self.skipTest(reason)
        require_unshare(self, PID_NS + MOUNT_NS)
        self.assertTrue(os.path.exists(SCRIPT), SCRIPT)
        r = run_container([node, SCRIPT, str(SECONDS), str(RATE)], self.dir, timeout=SECONDS + 60,
                          flags=PID_NS + MOUNT_NS, interval=0.5, sample_bytes=65536, match="node")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"node_native_leak: pid 1 ", r.stdout)
        self.assertEqual(r.stderr, b"", "the shim must be silent")
        paths = self.assertAllDumpsValid(self.dir, at_least=10)
        for p in (paths[0], paths[-1]):
            info = lwtest.inspect_info(p)
            self.assertEqual(info["pid"], 1, info["text"])
        rep = lwtest.report_json(self.dir)
        self.assertEqual([p["pid"] for p in rep["processes"]], [1])
        growing = [s for s in rep["sites"] if s["verdict"] == "growing"]
        native = [s for s in growing if s["frames"] and any(native_node_frame(f) for f in s["frames"])]
        summary = "\n".join(describe_site(s, frames=8) for s in rep["sites"][:6])
        self.assertTrue(native, "no growing site in node's native code:\n" + summary)
        top = native[0]
        print("top growing site (the program keeps %d B/s):\n%s" % (RATE, describe_site(top, frames=12)))
        self.assertTrue(native_node_frame(top["frames"][0]), "the allocating frame is not node's: %s" % top["frames"][0])
        # Several sites may share the leak (different JS call paths); together
        # they grow about as fast as the program keeps memory.
        total = sum(s["growth_bytes_per_s"] for s in native)
        print("growing native sites: %d, %.0f B/s together" % (len(native), total))
        self.assertGreater(total, RATE * 0.5, summary)
        self.assertLess(total, RATE * 2.0, summary)


if __name__ == "__main__":
    unittest.main()
