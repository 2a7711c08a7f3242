"""A daemon that closes stderr and opens a data file gets that file on
descriptor 2 (the lowest free one). The shim's one-line messages went to
fd 2 whatever it had become: "leakwatch: cannot write dumps in ..." landed
inside the program's data file. Now a line goes to fd 2 only while it is
what the process started with, or a terminal, a pipe, /dev/null or a file
opened for appending (a program that reopened stderr to its log)."""
import os
import unittest

import lwtest


class StderrReuse(lwtest.ShimTestCase):
    def run_mode(self, mode):
        path = os.path.join(self.tmp, "file.%s" % mode)
        # An unwritable dump directory: the shim has something to say.
        r = lwtest.run_shim([lwtest.program("stderr_reuse"), mode, path, "50000"], "/proc/self/no-such-dir",
                            timeout=120, interval=0.05)
        self.assertEqual((r.returncode, r.stdout), (0, b"ok\n"), r.stderr)
        with open(path, "rb") as f:
            return f.read()

    def test_data_file_on_fd_2_is_left_alone(self):
        self.assertEqual(self.run_mode("data"), b"DATA\n")

    def test_log_reopened_on_fd_2_gets_the_line(self):
        text = self.run_mode("log")
        self.assertTrue(text.startswith(b"DATA\n"), text)
        self.assertIn(b"leakwatch: cannot write dumps in /proc/self/no-such-dir", text)

    def test_original_stderr_gets_the_line(self):
        r = lwtest.run_shim([lwtest.program("simple_alloc")], "/proc/self/no-such-dir", timeout=120, interval=0.05)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count(b"leakwatch: cannot write dumps"), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
