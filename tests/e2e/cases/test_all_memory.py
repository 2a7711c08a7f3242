"""All of a process's memory, not only malloc: programs whose memory grows
outside the malloc family -- a Node.js JavaScript heap, CPython's pymalloc
arenas, an Erlang node's binaries, a custom arena grown with raw mmap, a
fragmenting heap whose live bytes are flat -- and a steady one. Under the
real preload, each report must put the growth where it is, within 50% of
the resident-memory slope the program itself measured, name the runtime's
next step, and the steady program must show none."""
import os
import re
import shutil
import subprocess
import unittest

import lwtest

SECONDS = 8
TOLERANCE = 0.5


def measured_slope(stdout):
    """The program's own resident-size slope, from its "rss T BYTES" lines
    (a least-squares line when it printed more than two)."""
    pts = [(float(t), int(b)) for t, b in re.findall(rb"^rss ([0-9.]+) (\d+)$", stdout, re.M)]
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mb = sum(b for _, b in pts) / n
    return sum((t - mt) * (b - mb) for t, b in pts) / sum((t - mt) ** 2 for t, _ in pts)


class AllMemory(lwtest.ShimTestCase):
    def run_program(self, cmd, env=None, **shim_vars):
        vars = dict(interval=0.25)
        vars.update(shim_vars)
        r = lwtest.run_shim(cmd, self.dir, timeout=180, env=env, **vars)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"", "the shim must be silent")
        rep = lwtest.report_json(self.dir)
        procs = [p for p in rep["processes"] if p["memory"]]
        self.assertTrue(procs, "no process recorded its memory")
        proc = max(procs, key=lambda p: p["dumps"])
        return rep, proc["memory"], measured_slope(r.stdout), proc

    def assertAttributed(self, memory, part, slope, what):
        parts = memory["parts"]
        got = parts[part]["growth_bytes_per_s"]
        summary = {k: (v["verdict"], round(v["growth_bytes_per_s"])) for k, v in parts.items()}
        self.assertEqual(parts["rss"]["verdict"], "growing", "%s: %s" % (what, summary))
        self.assertEqual(parts[part]["verdict"], "growing", "%s: %s" % (what, summary))
        print("\n%s: resident memory %.0f B/s (measured by the program), %s %.0f B/s (%+.0f%%); %s"
              % (what, slope, part, got, 100 * (got - slope) / slope, summary))
        self.assertLess(abs(got - slope), TOLERANCE * slope,
                        "%s: %s grows %.0f B/s, resident memory %.0f B/s; %s" % (what, part, got, slope, summary))

    def test_raw_mmap_arena(self):
        rep, mem, slope, _ = self.run_program([lwtest.program("mmap_arena"), str(2 << 20), str(SECONDS)])
        self.assertAttributed(mem, "mmap", slope, "raw mmap arena")
        sites = lwtest.sites_with_function(rep, "arena_grow")
        self.assertTrue(sites and sites[0]["frames"][0]["function"] == "[mmap]", sites[:1])
        self.assertEqual(sites[0]["verdict"], "growing")
        # The untouched aligned reservation is address space, not memory.
        reserve = lwtest.sites_with_function(rep, "aligned_reserve")
        self.assertTrue(all(s["live_bytes"] < (1 << 20) for s in reserve), reserve)

    def test_fragmenting_heap(self):
        _, mem, slope, proc = self.run_program([lwtest.program("fragment"), "100", str(SECONDS)], sample_bytes=65536)
        self.assertAttributed(mem, "other_anon", slope, "fragmentation")
        self.assertNotEqual(mem["parts"]["malloc"]["verdict"], "growing")
        self.assertTrue(any("retention or fragmentation" in f for f in mem["findings"]), mem["findings"])

    def test_steady_program(self):
        rep, mem, _, _ = self.run_program([lwtest.program("steady"), str(SECONDS)])
        grows = [k for k, v in mem["parts"].items() if v["verdict"] == "growing"]
        self.assertEqual(grows, [], mem["parts"])
        self.assertEqual(mem["findings"], [])
        self.assertFalse([s for s in rep["sites"] if s["verdict"] == "growing"])

    @unittest.skipUnless(shutil.which("node"), "node is not installed (.ci/packages.txt installs nodejs)")
    def test_node_js_heap(self):
        rep, mem, slope, proc = self.run_program(["node", lwtest.program_source("js_heap_leak.js"), "40000", str(SECONDS)])
        self.assertEqual(proc["runtime"], "node")
        self.assertAttributed(mem, "mmap", slope, "V8 heap")
        self.assertTrue(any("V8's JavaScript heap" in f and "heap snapshot" in f for f in mem["findings"]), mem["findings"])

    def test_cpython_pymalloc(self):
        rep, mem, slope, proc = self.run_program(["/usr/bin/python3", lwtest.program_source("py_heap_leak.py"), "40000", str(SECONDS)])
        self.assertEqual(proc["runtime"], "python")
        self.assertAttributed(mem, "mmap", slope, "pymalloc arenas")
        self.assertTrue(any("PYTHONMALLOC=malloc" in f for f in mem["findings"]), mem["findings"])

    @unittest.skipUnless(shutil.which("erl") and shutil.which("erlc"), "erlang is not installed (.ci/packages.txt installs erlang-base)")
    def test_beam_binaries(self):
        ebin = os.path.join(self.tmp, "ebin")
        os.makedirs(ebin)
        c = subprocess.run(["erlc", "-o", ebin, lwtest.program_source("beam_binary_leak.erl")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(c.returncode, 0, c.stdout)
        rep, mem, slope, proc = self.run_program(["erl", "-noshell", "-pa", ebin, "-s", "beam_binary_leak", "main", "20000",
                                                  str(SECONDS)], match="beam.smp")
        self.assertEqual(proc["runtime"], "beam")
        self.assertAttributed(mem, "mmap", slope, "ERTS carriers")
        self.assertTrue(any("+Mea min" in f for f in mem["findings"]), mem["findings"])


if __name__ == "__main__":
    unittest.main()
