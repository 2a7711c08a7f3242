"""Helpers for end-to-end tests: run real programs with the real shim
preloaded, then read what they wrote with the real reporter.

Every wait is bounded; nothing sleeps in place of a condition.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("LEAKWATCH_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
SHIM = os.path.join(BUILD, "lib", "libleakwatch.so")
CLI = os.path.join(BUILD, "bin", "leakwatch")
PROGRAMS = os.path.join(BUILD, "e2e")


def program(name):
    return os.path.join(PROGRAMS, name)


class Run:
    def __init__(self, proc, dump_dir):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.dump_dir = dump_dir

    def dumps(self):
        out = []
        for root, _, files in os.walk(self.dump_dir):
            out += [os.path.join(root, f) for f in files if f.endswith(".lwdump") and not f.startswith(".")]
        return sorted(out)


def shim_env(dump_dir, **extra):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("LEAKWATCH_") or k == "LD_PRELOAD":
            del env[k]
    env["LD_PRELOAD"] = SHIM
    env["LEAKWATCH_DIR"] = dump_dir
    for k, v in extra.items():
        env["LEAKWATCH_" + k.upper()] = str(v)
    return env


def run(cmd, dump_dir, timeout=120, preload=True, env=None, input=None, **shim_vars):
    """Runs cmd (list) with the shim preloaded; returns a Run."""
    e = shim_env(dump_dir, **shim_vars) if preload else dict(env or os.environ)
    if env and preload:
        e.update(env)
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, input=input)
    return Run(p, dump_dir)


def inspect(path, timeout=60):
    return subprocess.run([CLI, "inspect", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def report_json(inputs, timeout=300, extra=()):
    if isinstance(inputs, str):
        inputs = [inputs]
    p = subprocess.run([CLI, "report", *inputs, "--format", "json", *extra], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("leakwatch report failed (%d): %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


class ShimTestCase(unittest.TestCase):
    """A test case with a fresh dump directory, removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwtest.")
        self.dir = os.path.join(self.tmp, "dumps")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assertDumpsValid(self, run_or_paths, at_least=1):
        paths = run_or_paths.dumps() if isinstance(run_or_paths, Run) else run_or_paths
        self.assertGreaterEqual(len(paths), at_least, "expected at least %d dumps, got %s" % (at_least, paths))
        for p in paths:
            r = inspect(p)
            self.assertEqual(r.returncode, 0, "invalid dump %s: %s" % (p, r.stderr))
        return paths
