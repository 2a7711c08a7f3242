"""The README's promises that can be checked mechanically: the shim's
environment table is the one `leakwatch env-help` prints from the table the
shim parses, and the install layout is the documented one."""
import os
import re
import subprocess
import tempfile
import unittest

import lwtest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class Readme(unittest.TestCase):
    def test_env_table_matches_the_shim(self):
        table = subprocess.run([lwtest.CLI, "env-help"], stdout=subprocess.PIPE, text=True, timeout=30,
                               check=True).stdout
        readme = open(os.path.join(ROOT, "README.md")).read()
        for line in table.strip().splitlines():
            self.assertIn(line, readme, "README's env table is out of date; paste `leakwatch env-help`")

    def test_command_reference_and_exit_statuses_match_the_cli(self):
        # The README's command reference is the CLI's own help, pasted:
        # every line of `leakwatch --help` (with the exit statuses) and of
        # each command's --help.
        readme = open(os.path.join(ROOT, "README.md")).read()
        top = subprocess.run([lwtest.CLI, "--help"], stdout=subprocess.PIPE, text=True, timeout=30, check=True).stdout
        commands = re.findall(r"^  ([a-z][a-z-]+)  ", top, re.M)
        self.assertIn("report", commands)
        for args in [["--help"]] + [[c, "--help"] for c in commands]:
            out = subprocess.run([lwtest.CLI, *args], stdout=subprocess.PIPE, text=True, timeout=30, check=True).stdout
            for line in out.rstrip().splitlines():
                if line.strip():
                    self.assertIn(line.rstrip() + "\n", readme,
                                  "README's command reference is out of date (`leakwatch %s`)" % " ".join(args))

    def test_install_layout_and_run_finds_the_shim(self):
        with tempfile.TemporaryDirectory() as prefix:
            subprocess.run(["cmake", "--install", lwtest.BUILD, "--prefix", prefix], stdout=subprocess.DEVNULL,
                           timeout=120, check=True)
            self.assertTrue(os.path.exists(os.path.join(prefix, "bin", "leakwatch")))
            self.assertTrue(os.path.exists(os.path.join(prefix, "lib", "libleakwatch.so")))
            dumps = os.path.join(prefix, "dumps")
            env = {k: v for k, v in os.environ.items() if k != "LEAKWATCH_SHIM"}
            p = subprocess.run([os.path.join(prefix, "bin", "leakwatch"), "run", "--dir", dumps, "--", "true"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(any(f.endswith(".lwdump") for f in os.listdir(dumps)), p.stderr)


if __name__ == "__main__":
    unittest.main()
