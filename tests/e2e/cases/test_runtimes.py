"""Real language runtimes under the shim: CPython (with its own small-object
allocator, and with PYTHONMALLOC=malloc so every object goes through
malloc), Node.js (Buffers, JSON, an HTTP server serving requests to
itself) and the JVM (`java File.java`, compiled in-process). Output must be
unchanged, dumps valid, and the runtime itself must have been profiled."""
import os
import shutil
import unittest

import lwtest

PYTHON = "/usr/bin/python3"
NODE = shutil.which("node") or "/usr/bin/node"
JAVA = shutil.which("java") or "/usr/bin/java"


class Runtimes(lwtest.ShimTestCase):
    def run_runtime(self, cmd, exe_prefix, env=None, timeout=300, dump_dir=None):
        d = dump_dir or self.dir
        r = self.assertSameAsPlain(cmd, env=env, timeout=timeout, dump_dir=d, interval=0.5)
        paths = self.assertDumpsValid(lwtest.list_dumps(d))
        infos = [lwtest.inspect_info(p) for p in paths]
        mine = [i for i in infos if os.path.basename(i["exe"]).startswith(exe_prefix)]
        self.assertTrue(mine, "no dump from %s among %s" % (exe_prefix, sorted({i["exe"] for i in infos})))
        self.assertTrue(any(i["final"] for i in mine), "%s wrote no final dump" % exe_prefix)
        return r

    @unittest.skipUnless(os.path.exists(PYTHON), "no /usr/bin/python3")
    def test_cpython(self):
        for mode in ("default", "malloc"):
            with self.subTest(PYTHONMALLOC=mode):
                env = {"PYTHONMALLOC": mode} if mode != "default" else {}
                r = self.run_runtime([PYTHON, lwtest.program_source("py_work.py"), "30"], "python3", env=env,
                                     dump_dir=os.path.join(self.tmp, mode))
                self.assertIn(b"python work digest", r.stdout)

    @unittest.skipUnless(os.path.exists(NODE), "no node")
    def test_node(self):
        r = self.run_runtime([NODE, lwtest.program_source("node_work.js"), "20"], "node")
        self.assertIn(b"served 8", r.stdout)

    @unittest.skipUnless(os.path.exists(JAVA), "no java")
    def test_java(self):
        # The source launcher writes nothing to the current directory; run
        # from the temp dir anyway so nothing is left in the tree.
        src = os.path.join(self.tmp, "JavaWork.java")
        shutil.copy(lwtest.program_source("JavaWork.java"), src)
        r = self.run_runtime([JAVA, src, "20"], "java", timeout=400)
        self.assertIn(b"java work digest", r.stdout)


if __name__ == "__main__":
    unittest.main()
