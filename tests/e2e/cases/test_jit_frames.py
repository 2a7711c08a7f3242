"""Stacks through code without unwind tables (JIT code): the shim follows
its frame pointer, as libunwind does, and names each such frame `[jit]`;
stacks go on through them to main. A frame pointer that points at the
last word of a thread's stack, right below an inaccessible page, must not
make the walk read that page (the host would crash): that stack ends at
the stub."""
import os
import unittest

import lwtest


def names(site):
    return [f.get("function") or f.get("name") or "?" for f in site["frames"]]


class JitFrames(lwtest.ShimTestCase):
    def test_stacks_go_through_jit_frames(self):
        for sample in (1, 4096):
            with self.subTest(sample_bytes=sample):
                d = os.path.join(self.tmp, "s%d" % sample)
                r = self.assertSameAsPlain([lwtest.program("jit_frames"), "3000"], sample_bytes=sample, dump_dir=d)
                self.assertIn(b"jit frames checksum=", r.stdout)
                rep = lwtest.report_json(d)
                through = lwtest.sites_with_function(rep, "leak_block")
                self.assertTrue(through, [names(s) for s in rep["sites"]][:10])
                # Every sampled block of the site has the whole stack: two
                # [jit] frames between the named ones, down to main.
                for s in through:
                    n = names(s)
                    self.assertEqual(n[0], "leak_block", n)
                    self.assertIn("main", n, n)
                    want = ["leak_block", "[jit]", "inner_through_jit", "[jit]", "through_jit", "main"]
                    got = [x for x in n if x in want]
                    self.assertEqual(got, want, n)
                self.assertGreater(sum(s["live_bytes"] for s in through), 3000 * 1000 * 0.6)
                edge = lwtest.sites_with_function(rep, "leak_past_fake_frame_pointer")
                self.assertTrue(edge, [names(s) for s in rep["sites"]][:10])
                for s in edge:
                    n = names(s)
                    self.assertEqual(n[:2], ["leak_past_fake_frame_pointer", "[jit]"], n)
                    self.assertNotIn("main", n, n)


if __name__ == "__main__":
    unittest.main()
