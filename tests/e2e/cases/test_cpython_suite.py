"""CPython's own regression tests under the shim: the modules that
exercise threads, fork (from threads too), signals, subprocesses, the OS
layer, the garbage collector and ctypes, run by Debian's python3 with its
test package (libpython3.11-testsuite), once without the shim and once
with it at default sampling and with every allocation sampled. Each run
must pass; a hang becomes a failure with every thread's stack."""
import os
import subprocess
import unittest

import lwtest

PYTHON = "/usr/bin/python3"
MODULES = ["test_threading", "test_fork1", "test_signal", "test_os", "test_subprocess", "test_gc", "test_ctypes"]


class CPythonSuite(lwtest.ShimTestCase):
    def run_suite(self, preload, **shim_vars):
        cmd = [PYTHON, "-m", "test", "-j2", "--timeout", "300", *MODULES]
        env = lwtest.shim_env(os.path.join(self.tmp, "dumps"), **shim_vars) if preload else lwtest.plain_env()
        with subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              cwd=self.tmp) as p:
            # Three runs within ctest's 1800 s for this test (CMakeLists.txt):
            # a hang is reported here, with stacks, before ctest kills us.
            out, _ = lwtest.communicate_watched(p, cmd, None, 560)
        text = out.decode(errors="replace")
        self.assertEqual(p.returncode, 0, "python3 -m test failed (shim %s):\n%s" % (preload, text[-6000:]))
        self.assertIn("Tests result: SUCCESS", text)
        return text

    def test_cpython_regression_tests(self):
        if not os.path.exists("/usr/lib/python3.11/test/test_threading.py"):
            self.fail("Debian's libpython3.11-testsuite is not installed (.ci/packages.txt installs it)")
        self.run_suite(preload=False)
        self.run_suite(preload=True, interval=1)
        self.run_suite(preload=True, interval=1, sample_bytes=1)
        self.assertTrue(lwtest.list_dumps(os.path.join(self.tmp, "dumps")), "the shim wrote no dump")


if __name__ == "__main__":
    unittest.main()
