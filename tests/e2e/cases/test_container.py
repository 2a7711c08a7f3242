"""Issue 4: containers, emulated with Linux namespaces (no container engine
runs here). What a container gives a process is what these tests give it:
a PID namespace (the target is PID 1), a private mount namespace (a
read-only root, volumes mounted from outside, paths that exist only
inside), a UTS namespace (its own hostname, the pod name). Injection is by
environment variables only, as in docker/kubernetes/leaky-app.yaml.

Every namespace is made with `unshare`; a test is skipped, with the reason
printed, only when the kernel or the sandbox refuses that namespace. The
mounts live and die with their namespace, so the host is never changed.

The helpers here are shared with test_container_oom.py,
test_container_node.py and test_container_files.py.
"""
import os
import random
import re
import shutil
import signal
import subprocess
import time
import unittest

import lwtest

LEAKER = "container_leaker"
LEAK_FUNCTION = "leak_in_container"

# A container's process tree: own PID namespace, /proc to match; --kill-child
# so a timed-out unshare takes the whole "container" with it.
PID_NS = ["--pid", "--fork", "--kill-child", "--mount-proc"]
MOUNT_NS = ["--mount", "--propagation", "private"]

_probes = {}


def probe_unshare(flags):
    """None if `unshare FLAGS true` works here, else why not."""
    key = tuple(flags)
    if key not in _probes:
        if not shutil.which("unshare"):
            _probes[key] = "unshare (util-linux) is not installed"
        else:
            try:
                p = subprocess.run(["unshare", *flags, "true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, timeout=20)
                _probes[key] = None if p.returncode == 0 else "`unshare %s true` failed here (exit %d): %s" % (
                    " ".join(flags), p.returncode, p.stderr.strip())
            except subprocess.TimeoutExpired:
                _probes[key] = "`unshare %s true` hung" % " ".join(flags)
    return _probes[key]


def require_unshare(test, *flag_lists):
    for flags in flag_lists:
        reason = probe_unshare(flags)
        if reason:
            print("SKIP %s: %s" % (test.id(), reason), flush=True)
            test.skipTest(reason)


def shim_assignments(dump_dir, **shim_vars):
    """`env` arguments that inject the shim the way a manifest does."""
    out = ["LD_PRELOAD=" + lwtest.SHIM, "LEAKWATCH_DIR=" + dump_dir]
    out += ["LEAKWATCH_%s=%s" % (k.upper(), v) for k, v in shim_vars.items()]
    return out


def in_container(cmd, dump_dir, flags=PID_NS, setup=None, **shim_vars):
    """The command line that runs cmd as a container's entrypoint: in fresh
    namespaces (flags), after an optional shell `setup` script, with the
    shim injected through the environment. With a PID namespace and no
    setup, cmd is PID 1 (`env` and `sh` exec it)."""
    inner = ["env", *shim_assignments(dump_dir, **shim_vars), *cmd]
    if setup:
        inner = ["sh", "-euc", setup + '\nexec "$@"', "container", *inner]
    return ["unshare", *flags, *inner]


def run_container(cmd, dump_dir, timeout=60, flags=PID_NS, setup=None, env=None, **shim_vars):
    """Runs in_container(...) with no shim variables outside it; returns a lwtest.Run."""
    p = subprocess.run(in_container(cmd, dump_dir, flags, setup, **shim_vars), env=lwtest.plain_env(env),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return lwtest.Run(p, dump_dir)


def report_text(inputs, extra=(), timeout=120):
    if isinstance(inputs, str):
        inputs = [inputs]
    p = subprocess.run([lwtest.CLI, "report", *inputs, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p


def describe_site(site, frames=6):
    lines = ["%s %.0f B/s live %.0f B conf %.3f" % (site["verdict"], site["growth_bytes_per_s"], site["live_bytes"],
                                                   site["confidence"])]
    for f in site["frames"][:frames]:
        where = "%s:%s" % (f["file"], f["line"]) if f.get("file") else "-"
        lines.append("    %s  %s  [%s]" % (f["function"], where, f["module"]))
    return "\n".join(lines)


def leak_sites(rep, function=LEAK_FUNCTION):
    return lwtest.sites_with_function(rep, function)


def host_child(pid):
    """The first child of pid (the namespace's PID 1 when pid is `unshare --fork`), or None."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan /proc
        pass
    except OSError:
        return None
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        return int(name)
            except (OSError, IndexError, ValueError):
                continue
    return None


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def started_as(unshare_pid, exe):
    """The host pid of the namespace's PID 1 once it runs exe, else None."""
    child = host_child(unshare_pid)
    return child if child and exe_of(child) == exe else None


class ContainerTestCase(lwtest.ShimTestCase):
    """ShimTestCase plus checks shared by the container tests."""

    def assertLeakGrowing(self, rep, function=LEAK_FUNCTION):
        sites = leak_sites(rep, function)
        summary = "\n".join(describe_site(s) for s in rep["sites"][:8])
        self.assertTrue(sites, "no site names %s:\n%s" % (function, summary))
        self.assertEqual(sites[0]["verdict"], "growing", "%s is not growing:\n%s" % (function, summary))
        return sites[0]

    def assertAllDumpsValid(self, dump_dir, at_least=1):
        paths = lwtest.list_dumps(dump_dir)
        self.assertDumpsValid(paths, at_least=at_least)
        return paths


class PidOne(ContainerTestCase):
    """(a) The target is PID 1 of its PID namespace, as a container's entrypoint is."""

    def test_target_as_pid_1(self):
        require_unshare(self, PID_NS)
        r = run_container([lwtest.program(LEAKER), "2.5", "1000000"], self.dir, interval=0.25, sample_bytes=16384,
                          match=LEAKER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"container_leaker: pid 1 ", r.stdout, "the target was not PID 1: %r" % r.stdout)
        self.assertEqual(r.stderr, b"", "the shim must be silent")
        paths = self.assertAllDumpsValid(self.dir, at_least=4)
        for p in paths:
            self.assertTrue(os.path.basename(p).startswith(LEAKER + ".1."), p)
        info = lwtest.inspect_info(paths[-1])
        self.assertEqual((info["pid"], info["ppid"]), (1, 0), info["text"])
        self.assertTrue(info["final"], "PID 1's exit did not write the final dump")
        self.assertFinalDumpLast(paths)
        rep = lwtest.report_json(self.dir)
        self.assertEqual([p["pid"] for p in rep["processes"]], [1])
        self.assertTrue(rep["processes"][0]["exited_normally"])
        self.assertLeakGrowing(rep)


class ReadOnlyRoot(ContainerTestCase):
    """(b) readOnlyRootFilesystem: / is read-only, only the dump volume is writable."""

    # The volume is a bind mount of a host directory (a hostPath), made
    # before / is remounted read-only, so it keeps its own writable flag.
    HOSTPATH_SETUP = """
mount --bind "$CT_VOLUME" "$CT_VOLUME"
mount -o remount,bind,ro /
if touch "$CT_PROBE" 2>/dev/null; then echo "the root is still writable" >&2; exit 97; fi
"""

    def setUp(self):
        super().setUp()
        self.volume = os.path.join(self.tmp, "volume")
        os.makedirs(self.volume)
        self.env = {"CT_VOLUME": self.volume, "CT_PROBE": os.path.join(self.tmp, "probe")}

    def test_dumps_on_a_host_volume_with_read_only_root(self):
        require_unshare(self, PID_NS + MOUNT_NS)
        dumps = os.path.join(self.volume, "dumps")  # created by the shim, on the volume
        r = run_container([lwtest.program(LEAKER), "2.5", "1000000"], dumps, flags=PID_NS + MOUNT_NS,
                          setup=self.HOSTPATH_SETUP, env=self.env, interval=0.25, sample_bytes=16384, match=LEAKER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"", "the shim must be silent")
        self.assertFalse(os.path.exists(self.env["CT_PROBE"]))
        self.assertAllDumpsValid(dumps, at_least=4)
        self.assertLeakGrowing(lwtest.report_json(dumps))

    def test_dumps_on_tmpfs_another_filesystem_than_the_program(self):
        """The dump directory is a tmpfs (an emptyDir with medium: Memory):
        not the program's filesystem, so the rename stays inside the tmpfs.
        The dumps are copied out to the host volume before the namespace ends."""
        require_unshare(self, MOUNT_NS)
        scratch = os.path.join(self.tmp, "tmpfs")
        os.makedirs(scratch)
        setup = """
mount -t tmpfs -o size=64m,mode=0755 lw-emptydir "$CT_SCRATCH"
""" + self.HOSTPATH_SETUP + """
[ "$(stat -f -c %T "$CT_SCRATCH")" = tmpfs ] || { echo "no tmpfs at $CT_SCRATCH" >&2; exit 96; }
set +e
"$@"
rc=$?
set -e
cp -p "$CT_SCRATCH"/dumps/*.lwdump "$CT_VOLUME"/
exit $rc
"""
        env = dict(self.env, CT_SCRATCH=scratch)
        dumps = os.path.join(scratch, "dumps")
        cmd = in_container([lwtest.program(LEAKER), "2.5", "1000000"], dumps, flags=MOUNT_NS, setup=setup,
                           interval=0.25, sample_bytes=16384, match=LEAKER)
        # in_container appended `exec "$@"` after the setup: the script exits before it.
        p = subprocess.run(cmd, env=lwtest.plain_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"", "the shim must be silent")
        self.assertEqual(os.listdir(scratch), [], "the tmpfs leaked out of its namespace")
        self.assertAllDumpsValid(self.volume, at_least=4)
        self.assertLeakGrowing(lwtest.report_json(self.volume))

    def test_read_only_root_without_a_volume_says_why(self):
        """A forgotten volume: LEAKWATCH_DIR names a directory that does not
        exist, on the read-only root. The program must run on unharmed, and
        the one line the shim prints must give the real reason (the
        directory cannot be created: "Read-only file system"), not the
        "No such file or directory" of the open() that followed.

        Fails as of this writing: shim/dump/writer.cpp make_dirs() drops
        mkdir's errno and write_file() reports open()'s ENOENT instead."""
        require_unshare(self, PID_NS + MOUNT_NS)
        missing = os.path.join(self.tmp, "not-a-volume", "dumps")
        cmd = [lwtest.program(LEAKER), "1", "1000000"]
        base = lwtest.run_plain(cmd, timeout=60)
        r = run_container(cmd, missing, flags=PID_NS + MOUNT_NS, setup=self.HOSTPATH_SETUP, env=self.env,
                          interval=0.2, match=LEAKER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(base.returncode, 0, base.stderr)
        self.assertEqual(re.sub(rb"pid \d+ ", b"", r.stdout), re.sub(rb"pid \d+ ", b"", base.stdout))
        self.assertFalse(os.path.exists(missing))
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, "expected one line from the shim, got %r" % lines)
        self.assertIn(missing, lines[0])
        self.assertIn("Read-only file system", lines[0],
                      "the shim names the wrong cause for an uncreatable dump directory: %r" % lines[0])


class SharedVolume(ContainerTestCase):
    """(c) Two "pods" (PID + UTS namespaces, both targets PID 1) write into one volume."""

    def test_two_pid_1s_share_one_directory(self):
        require_unshare(self, PID_NS + ["--uts"])
        procs = []
        for host in ("pod-a", "pod-b"):
            cmd = in_container([lwtest.program(LEAKER), "2.5", "600000"], self.dir, flags=PID_NS + ["--uts"],
                               setup='hostname "%s"' % host, interval=0.1, sample_bytes=16384, match=LEAKER,
                               high_water=0, max_dumps=100000)  # every dump stays: no holes to explain
            procs.append(subprocess.Popen(cmd, env=lwtest.plain_env(), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE))
        try:
            outs = [p.communicate(timeout=60) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=30)
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(b"pid 1 ", out)
        paths = self.assertAllDumpsValid(self.dir, at_least=10)
        names = [os.path.basename(p) for p in paths]
        self.assertEqual(len(names), len(set(names)))
        by_proc = self.assertFinalDumpLast(paths)
        self.assertEqual(len(by_proc), 2, "expected two processes, got %s" % sorted(by_proc))
        for (pid, instance), infos in by_proc.items():
            self.assertEqual(pid, 1)
            seqs = [i["seq"] for i in infos]
            self.assertEqual(seqs, list(range(len(seqs))), "process %s lost or overwrote dumps" % instance)
        self.assertEqual(len({i for _, i in by_proc}), 2, "both containers drew the same instance")
        rep = lwtest.report_json(self.dir)
        self.assertEqual(len(rep["processes"]), 2)
        self.assertEqual(sorted(p["pid"] for p in rep["processes"]), [1, 1])
        self.assertEqual(sorted(p["host"] for p in rep["processes"]), ["pod-a", "pod-b"])
        self.assertEqual(rep["warnings"], [])
        site = self.assertLeakGrowing(rep)
        self.assertEqual(site["processes"], 2, "the same leak in two pods should be one site")


class KilledContainer(ContainerTestCase):
    """(e) The container's PID 1 is SIGKILLed from the host (as the kubelet
    or the OOM killer does) while it dumps every 0.05 s. All the rounds'
    processes share one directory, as pods share a volume."""

    def _start_round(self, prog):
        before = len(lwtest.list_dumps(self.dir))
        # Many distinct stacks and dense sampling: bigger dumps, longer writes.
        cmd = in_container([prog, "0", "2000000", "120"], self.dir, interval=0.05, sample_bytes=4096, match=LEAKER,
                           high_water=0, max_dumps=100000)
        p = subprocess.Popen(cmd, env=lwtest.plain_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            init = lwtest.wait_until(lambda: started_as(p.pid, prog), 20, "the container's PID 1 to start")
            lwtest.wait_until(lambda: len(lwtest.list_dumps(self.dir)) > before, 20, "a first dump")
        except BaseException:
            self._end_round(p)
            raise
        return p, init

    def _end_round(self, p):
        if p.poll() is None:
            p.kill()  # --kill-child: the namespace goes with it
        p.wait(timeout=30)
        p.stderr.close()

    def _check_dir(self, rounds, what):
        paths = self.assertAllDumpsValid(self.dir, at_least=rounds)
        temps = sorted(f for f in os.listdir(self.dir) if f.startswith(".") and f.endswith(".tmp"))
        print("%d rounds killed %s: %d dumps, %d temp files left by kills inside a write" % (
            rounds, what, len(paths), len(temps)))
        by_instance = {}
        for path in paths:
            info = lwtest.inspect_info(path)
            self.assertEqual(info["pid"], 1, path)
            self.assertFalse(info["final"], "a final dump from a killed process: %s" % path)
            by_instance.setdefault(info["instance"], []).append(info["seq"])
        self.assertEqual(len(by_instance), rounds)
        for instance, seqs in by_instance.items():
            self.assertEqual(sorted(seqs), list(range(len(seqs))), "holes in the dumps of %s" % instance)
        rep = lwtest.report_json(self.dir)
        self.assertEqual(rep["warnings"], [], "the reader misread files the kills left")
        self.assertEqual(rep["dumps_read"], len(paths))
        self.assertEqual(len(rep["processes"]), rounds)
        for proc in rep["processes"]:
            self.assertEqual(proc["pid"], 1)
            self.assertFalse(proc["exited_normally"])
        text = report_text(self.dir)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertEqual(text.stderr, "", "report warned about files the kills left")
        self.assertIn("%d processes" % rounds, text.stdout.splitlines()[0])
        return temps

    def test_sigkill_pid_1_at_random_moments(self):
        require_unshare(self, PID_NS)
        rng = random.Random(int(os.environ.get("LW_SEED", "0")) or None)
        prog = os.path.realpath(lwtest.program(LEAKER))
        delays = []
        for _ in range(6):
            p, init = self._start_round(prog)
            try:
                delays.append(rng.uniform(0.0, 0.5))
                time.sleep(delays[-1])
                os.kill(init, signal.SIGKILL)
            finally:
                self._end_round(p)
        self._check_dir(6, "after " + ", ".join("%.2fs" % d for d in delays))

    def test_sigkill_pid_1_inside_a_write(self):
        """A write takes ~0.1 ms, so random moments almost never land inside
        one: here strace (attached from the host) holds the writer thread
        in write(2) or rename(2) of its temp file, and PID 1 is killed then."""
        require_unshare(self, PID_NS)
        if not shutil.which("strace"):
            reason = "strace is not installed (it holds a dump write open for the kill)"
            print("SKIP %s: %s" % (self.id(), reason))
            self.skipTest(reason)
        prog = os.path.realpath(lwtest.program(LEAKER))
        rounds = ["write", "rename", "write", "rename"]
        for syscall in rounds:
            p, init = self._start_round(prog)
            tracer = None
            try:
                tracer = subprocess.Popen(["strace", "-qq", "-f", "-o", "/dev/null", "-p", str(init), "-e",
                                           "trace=" + syscall, "-e", "inject=%s:delay_enter=1000000" % syscall],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                # Temp files from before strace holds the writer live ~0.1 ms: only
                # those created once it is attached count (each is then held 1 s).
                lwtest.wait_until(lambda: traced(init) or tracer.poll() is not None, 30, "strace to attach")
                known = set(os.listdir(self.dir))
                new_temp = lambda: next((n for n in os.listdir(self.dir) if n.endswith(".tmp") and n not in known),
                                        None)
                lwtest.wait_until(lambda: new_temp() or tracer.poll() is not None, 10, "a dump write held by strace")
                temp = new_temp()
                if not temp:  # strace ended without holding anything: it could not attach here
                    reason = "strace cannot trace here (exit %s): %s" % (
                        tracer.returncode, tracer.stderr.read().decode(errors="replace").strip())
                    print("SKIP %s: %s" % (self.id(), reason))
                    self.skipTest(reason)
                os.kill(init, signal.SIGKILL)
            finally:
                self._end_round(p)
                if tracer:
                    try:
                        tracer.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        tracer.kill()
                        tracer.wait(timeout=15)
                    tracer.stderr.close()
            self.assertTrue(os.path.exists(os.path.join(self.dir, temp)), "%s vanished" % temp)
        temps = self._check_dir(len(rounds), "inside " + ", ".join(rounds))
        self.assertEqual(len(temps), len(rounds), temps)


def traced(pid):
    """Whether a tracer (strace) is attached to every thread of pid."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
        for tid in tids:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                if re.search(r"^TracerPid:\s+0$", f.read(), re.M):
                    return False
        return bool(tids)
    except OSError:
        return False


class ReportOutsideContainer(ContainerTestCase):
    """(f) The binary lives at a path that exists only inside the container."""

    def test_report_after_the_container_is_gone(self):
        require_unshare(self, PID_NS + MOUNT_NS)
        # A directory to hide under a tmpfs inside the namespace: not one that
        # holds the build (the shim and the program must stay visible).
        parent = next((d for d in ("/opt", "/srv", "/media") if os.path.isdir(d) and not os.path.islink(d)
                       and not os.path.realpath(lwtest.BUILD).startswith(os.path.realpath(d) + "/")), None)
        if parent is None:
            reason = "no /opt, /srv or /media directory (outside the build tree) to mount over"
            print("SKIP %s: %s" % (self.id(), reason))
            self.skipTest(reason)
        app_dir = "%s/lwtest-app-%016x" % (parent, random.getrandbits(64))
        app = app_dir + "/bin/leaky-app"
        self.assertFalse(os.path.exists(app_dir))
        # The image's filesystem: a tmpfs over `parent`, seen only inside the
        # namespace; the program is copied into it and run from there.
        setup = """
mount -t tmpfs -o size=64m lw-image "$CT_PARENT"
mkdir -p "$CT_APP_DIR/bin"
cp "$CT_PROG" "$CT_APP"
"""
        env = {"CT_PARENT": parent, "CT_APP_DIR": app_dir, "CT_APP": app, "CT_PROG": lwtest.program(LEAKER)}
        r = run_container([app, "2.5", "1000000"], self.dir, flags=PID_NS + MOUNT_NS, setup=setup, env=env,
                          interval=0.25, sample_bytes=16384, match="leaky-app")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"pid 1 ", r.stdout)
        self.assertFalse(os.path.exists(app_dir), "%s exists on the host" % app_dir)
        paths = self.assertAllDumpsValid(self.dir, at_least=4)
        self.assertEqual(lwtest.inspect_info(paths[0])["exe"], app)

        # Without the binary: names from the dump itself, no file:line.
        rep = lwtest.report_json(self.dir)
        site = self.assertLeakGrowing(rep)
        leaf = next(f for f in site["frames"] if LEAK_FUNCTION in f["function"])
        self.assertEqual(leaf["module"], app)
        self.assertIsNone(leaf["file"], "file:line without the binary? %s" % leaf)
        print("without --root:\n" + describe_site(site))

        # With a copy of the container's filesystem: file:line.
        rootfs = os.path.join(self.tmp, "rootfs")
        os.makedirs(rootfs + app_dir + "/bin")
        shutil.copy2(lwtest.program(LEAKER), rootfs + app)
        rep = lwtest.report_json(self.dir, extra=["--root", rootfs])
        site = self.assertLeakGrowing(rep)
        print("with --root %s:\n%s" % (rootfs, describe_site(site)))
        for f in site["frames"]:
            if f["module"] == app and f["function"] != "_start":  # _start comes from crt1.o: no DWARF
                self.assertIsNotNone(f["file"], "no file for %s" % f)
                self.assertGreater(f["line"] or 0, 0, "no line for %s" % f)
        leaf = next(f for f in site["frames"] if LEAK_FUNCTION in f["function"])
        self.assertTrue(leaf["file"].endswith("container_leaker.cpp"), leaf)
        self.assertEqual(leaf["module"], app, "module must show the recorded path")


if __name__ == "__main__":
    unittest.main()
