"""Helpers for end-to-end tests: run real programs with the real shim
preloaded, then read what they wrote with the real reporter.

Every wait is bounded; nothing sleeps in place of a condition.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
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


# Extensions: plain (shim-less) runs to compare against, long-running
# processes, dump contents, polling with a deadline, building test libraries.


CC = os.environ.get("CC") or shutil.which("cc") or "gcc"


def plain_env(extra=None):
    """The environment without the shim or any LEAKWATCH_ variable."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("LEAKWATCH_") or k == "LD_PRELOAD":
            del env[k]
    if extra:
        env.update(extra)
    return env


def run_plain(cmd, timeout=120, env=None, input=None, executable=None, cwd=None):
    """Runs cmd without the shim; returns a Run (with no dump directory)."""
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    p = subprocess.run(cmd, env=plain_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       executable=executable, cwd=cwd, **stdin)
    return Run(p, None)


def run_shim(cmd, dump_dir, timeout=120, env=None, input=None, executable=None, cwd=None, preload=None,
             **shim_vars):
    """Like run(), with executable/cwd and an explicit LD_PRELOAD value
    (preload) allowed; the Run also has the process id (pid)."""
    e = shim_env(dump_dir, **shim_vars)
    if env:
        e.update(env)
    if preload is not None:
        e["LD_PRELOAD"] = preload
    with subprocess.Popen(cmd, env=e, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, executable=executable, cwd=cwd) as p:
        out, err = communicate_watched(p, cmd, input, timeout)
        r = Run(subprocess.CompletedProcess(cmd, p.returncode, out, err), dump_dir)
        r.pid = p.pid
    return r


def communicate_watched(p, cmd, input, timeout):
    """p.communicate() bounded by timeout: a process that does not end in
    time is a hang, reported with every thread's stack (its own and its
    children's, through gdb), then killed -- never a stuck test run."""
    try:
        return p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stacks = thread_stacks(p.pid, with_children=True)
        kids = children_of(p.pid)
        p.kill()
        for c in kids:
            try:
                os.kill(c, 9)
            except OSError:
                pass
        p.communicate()
        raise AssertionError("%r did not end within %ds (a hang); its threads:\n%s" % (cmd, timeout, stacks))


def wait_until(predicate, timeout, what, poll=0.02):
    """Polls predicate() until it returns a true value or timeout seconds pass.
    Returns that value; raises AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(poll)


def list_dumps(dump_dir):
    """Complete dumps in dump_dir (temp files, named .*.tmp, excluded)."""
    if not dump_dir or not os.path.isdir(dump_dir):
        return []
    return sorted(os.path.join(dump_dir, f) for f in os.listdir(dump_dir)
                  if f.endswith(".lwdump") and not f.startswith("."))


def dump_seq(path):
    """The sequence number in a dump's name (NAME.PID.INSTANCE.SEQ.lwdump)."""
    return int(os.path.basename(path).split(".")[-2])


def dump_pid(path):
    """The process id in a dump's name (NAME.PID.INSTANCE.SEQ.lwdump)."""
    return int(os.path.basename(path).split(".")[-4])


_MODULE_RE = re.compile(r"^    [0-9a-f]+-[0-9a-f]+ (.*?)(?: build-id [0-9a-f]+)?$")


def inspect_info(path, timeout=60):
    """Runs `leakwatch inspect` on one dump and parses what it printed.
    Returns a dict: pid, ppid, exe, cmdline, seq, final, sample_bytes,
    modules (list of paths), text (the whole output). Raises if invalid."""
    r = inspect(path, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("invalid dump %s (exit %d): %s" % (path, r.returncode, r.stderr))
    info = {"text": r.stdout, "modules": [], "final": False}
    section = None
    for line in r.stdout.splitlines():
        m = re.match(r"^  process     (.*) \(pid (\d+), ppid (\d+), instance ([0-9a-f]+)\)$", line)
        if m:
            info.update(exe=m.group(1), pid=int(m.group(2)), ppid=int(m.group(3)), instance=m.group(4))
            continue
        m = re.match(r"^  command     (.*)$", line)
        if m:
            info["cmdline"] = m.group(1)
            continue
        m = re.match(r"^  dump        #(\d+) at .*$", line)
        if m:
            info["seq"] = int(m.group(1))
            info["final"] = "final (normal exit)" in line
            info["t"] = float(re.search(r"\(([0-9.]+)s after start\)", line).group(1))
            info["reason"] = "final" if info["final"] else "trigger" if line.endswith(", trigger") else \
                "high-water" if line.endswith(", high-water") else "periodic"
            continue
        m = re.match(r"^  memory      ([0-9.]+ \S+) resident", line)
        if m:
            info["rss"] = parse_bytes(m.group(1))
            continue
        m = re.match(r"^  shim        .*, ([0-9.]+ \S+) resident", line)
        if m:
            info["shim_resident"] = parse_bytes(m.group(1))
            continue
        m = re.match(r"^  sampling    every (\d+) bytes", line)
        if m:
            info["sample_bytes"] = int(m.group(1))
            continue
        if line.startswith("  modules:"):
            section = "modules"
            continue
        if line.startswith("  largest live records:"):
            section = None
            continue
        if section == "modules":
            m = _MODULE_RE.match(line)
            if m:
                info["modules"].append(m.group(1))
    for k in ("pid", "ppid", "exe", "seq"):
        if k not in info:
            raise AssertionError("`leakwatch inspect %s` printed no %s:\n%s" % (path, k, r.stdout))
    return info


def diff_rows(stdout):
    """The site rows of `leakwatch diff` text output (after its column
    header), continuation lines excluded."""
    lines = stdout.splitlines()
    start = next((i for i, l in enumerate(lines) if l.split()[:1] == ["CHANGE"]), None)
    if start is None:
        return []
    return [l for l in lines[start + 1:] if l.strip() and not l.startswith("...")]


def parse_bytes(text):
    """'1.50 MiB' -> bytes (as the reporter prints them)."""
    num, unit = text.split()
    return float(num) * {"B": 1, "KiB": 1024, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit]


def site_functions(report):
    """Every frame function named by any site of a JSON report."""
    return {f["function"] for s in report["sites"] for f in s["frames"] if f.get("function")}


def sites_with_function(report, name):
    """Sites whose frames include a function whose name contains `name`."""
    return [s for s in report["sites"] if any(name in (f.get("function") or "") for f in s["frames"])]


def children_of(pid):
    out = []
    for st in os.listdir("/proc"):
        if not st.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % st) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(st))
        except (OSError, IndexError, ValueError):
            pass
    return out


def thread_stacks(pid, with_children=False):
    """Every thread's stack of pid (and of its children: a hung fork child
    keeps its parent waiting), through gdb when it is installed."""
    gdb = shutil.which("gdb")
    if not gdb:
        return "(gdb not installed: no stacks)"
    text = []
    for p in [pid] + (children_of(pid) if with_children else []):
        r = subprocess.run([gdb, "-batch", "-p", str(p), "-ex", "thread apply all bt 30"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        text.append("--- process %d ---\n%s" % (p, "\n".join(l for l in r.stdout.splitlines()
                                                          if l.startswith(("Thread", "#")))))
    return "\n".join(text)


def build_shared(src, out, cflags=(), timeout=120):
    """Compiles one C source file into a shared library (-shared -fPIC -g)."""
    cmd = [CC, "-shared", "-fPIC", "-g", "-O1", "-fno-omit-frame-pointer", *cflags, "-o", out, src]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("building %s failed: %s\n%s" % (out, " ".join(cmd), p.stderr))
    return out


PROGRAM_SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")


def program_source(name):
    return os.path.join(PROGRAM_SOURCES, name)


class Background:
    """A long-running process under test: stdin is a pipe the test holds
    open; stdout and stderr go to files that can be read while it runs."""

    def __init__(self, cmd, env, workdir, name="bg", executable=None, cwd=None):
        self.out_path = os.path.join(workdir, name + ".stdout")
        self.err_path = os.path.join(workdir, name + ".stderr")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=self._out, stderr=self._err,
                                     executable=executable, cwd=cwd)
        self.pid = self.proc.pid
        self.returncode = None

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read()

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_ticking(self, predicate, timeout, what, tick=b"tick\n"):
        """wait_until(predicate), sending `tick` to the process at every poll:
        the shim writes dumps from allocations, and a test program waiting
        on stdin allocates a little for each tick it reads."""
        def poll():
            self.send(tick)
            return predicate()
        return wait_until(poll, timeout, what, poll=0.05)

    def finish(self, timeout=60):
        """Closes stdin and waits (bounded) for the process to exit."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.returncode = self.proc.wait(timeout=timeout)
        self._close_files()
        return self.returncode

    def wait_exit(self, timeout):
        """Waits for the process to end by itself; a hang is reported with
        every thread's stack, then killed."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stacks = thread_stacks(self.pid, with_children=True)
            self.kill()
            raise AssertionError("process %d did not end within %ds; its threads:\n%s" % (self.pid, timeout, stacks))
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self._close_files()
        return self.returncode

    def kill(self, sig=9):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
        self.returncode = self.proc.wait(timeout=60)
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self._close_files()
        return self.returncode

    def _close_files(self):
        for f in (self._out, self._err):
            if not f.closed:
                f.close()


class ShimTestCase(unittest.TestCase):
    """A test case with a fresh dump directory, removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwtest.")
        self.dir = os.path.join(self.tmp, "dumps")
        self._bg = []

    def tearDown(self):
        for b in getattr(self, "_bg", ()):  # processes the test started and left running (a failed test)
            if b.proc.poll() is None:
                b.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assertDumpsValid(self, run_or_paths, at_least=1):
        paths = run_or_paths.dumps() if isinstance(run_or_paths, Run) else run_or_paths
        self.assertGreaterEqual(len(paths), at_least, "expected at least %d dumps, got %s" % (at_least, paths))
        for p in paths:
            r = inspect(p)
            self.assertEqual(r.returncode, 0, "invalid dump %s: %s" % (p, r.stderr))
        return paths

    def start(self, cmd, dump_dir=None, preload=True, env=None, name="bg", executable=None, cwd=None, **shim_vars):
        """Starts cmd in the background (with the shim unless preload=False)."""
        if preload:
            e = shim_env(dump_dir or self.dir, **shim_vars)
            if env:
                e.update(env)
        else:
            e = plain_env(env)
        b = Background(cmd, e, self.tmp, name=name, executable=executable, cwd=cwd)
        self._bg.append(b)
        return b

    def assertSameAsPlain(self, cmd, timeout=120, env=None, input=None, executable=None, preload=None,
                          plain_preload=None, expect_returncode=0, dump_dir=None, **shim_vars):
        """Runs cmd without and with the shim; both must exit the same way
        with the same stdout, and the shim run must print nothing more on
        stderr. Returns the shim Run."""
        penv = dict(env or {})
        if plain_preload:
            penv["LD_PRELOAD"] = plain_preload
        base = run_plain(cmd, timeout=timeout, env=penv, input=input, executable=executable)
        self.assertEqual(base.returncode, expect_returncode, "plain run failed: %r\nstderr: %s" % (cmd, base.stderr))
        r = run_shim(cmd, dump_dir or self.dir, timeout=timeout, env=env, input=input, executable=executable,
                     preload=preload, **shim_vars)
        self.assertEqual(r.returncode, base.returncode, "exit status differs under the shim; stderr: %s" % r.stderr)
        self.assertEqual(r.stdout, base.stdout, "stdout differs under the shim")
        self.assertEqual(r.stderr, base.stderr, "stderr differs under the shim (the shim must be silent)")
        return r

    def assertFinalDumpLast(self, paths):
        """The last dump (by sequence number) of each process is marked final."""
        by_proc = {}
        for p in paths:
            i = inspect_info(p)
            by_proc.setdefault((i["pid"], i["instance"]), []).append(i)
        for key, infos in by_proc.items():
            infos.sort(key=lambda i: i["seq"])
            self.assertTrue(infos[-1]["final"], "last dump of process %s is not final" % (key,))
            self.assertFalse(any(i["final"] for i in infos[:-1]), "a non-last dump of %s is final" % (key,))
        return by_proc
