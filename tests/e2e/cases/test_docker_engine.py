"""Issue 14: the container flow on a real Docker engine.

test_container*.py emulate a container with namespaces; this test runs the
real thing. Both images are built from the repository with
docker/Dockerfile (the classic builder, as Debian 12's docker.io runs it),
then:

- the init container (the leakwatch image's default command) installs the
  shim into a named volume;
- the bundled leaky demo runs as PID 1 of a read-only container with the
  shim injected by environment variables and a memory limit small enough
  for an OOM kill every ~30 s, under a restart policy: the OOM-restart
  loop. Once the engine has restarted it, the dumps on the named dump
  volume are reported by the leakwatch image, with file:line from a copy
  of the app image's filesystem (--root): the leaking function, its line,
  and its rate per incarnation (not summed over the restarts);
- two replicas share one dump volume at the same time, run as in
  docker/kubernetes/leaky-app.yaml (uid 10001, no capabilities); the
  report, read as that user, selects each one by container id, host name
  and instance;
- the manifests and the compose file name what the images hold.

Engine: the one DOCKER_HOST (or the default socket) names if it answers;
otherwise the test starts its own dockerd (root only) with its data and
state in a temporary directory, and stops it at the end. No bridge
network is assumed (every container runs with --network none; builds use
the host's network) and no registry: when the engine has no debian:12,
one is made with debootstrap from the Debian mirror apt uses here and
imported as debian:12 and debian:12-slim (the tarball is cached in
$LW_TEST_CACHE, default /var/cache/leakwatch-test, for the next run).
Everything the test creates -- containers, volumes, images, the engine
it started -- is removed at the end. Without an engine the test is
skipped, with the reason printed.

An engine started here gets SIGTERM if the test process dies (even by
SIGKILL), and the next run removes what such a killed run left in the
temporary directory.

Environment: LW_DOCKER / LW_DOCKERD (the binaries), LW_TEST_CACHE,
LW_DOCKER_STORAGE_DRIVER (for the engine started here; by default dockerd
picks overlay2 where the temporary directory allows it, else vfs).
"""
import contextlib
import ctypes
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from test_container_files import ignore_patterns, ignored

try:
    import yaml
except ImportError:
    yaml = None

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
DOCKERFILE = os.path.join(REPO, "docker", "Dockerfile")
BUILDKIT_IGNORE = os.path.join(REPO, "docker", "Dockerfile.dockerignore")
CLASSIC_IGNORE = os.path.join(REPO, ".dockerignore")
COMPOSE = os.path.join(REPO, "docker", "compose.yaml")
MANIFESTS = sorted(glob.glob(os.path.join(REPO, "docker", "kubernetes", "*.yaml")))
DEMO_SOURCE = os.path.join(REPO, "tests", "e2e", "programs", "demo_service.cpp")

TOOL_IMAGE = "leakwatch:test"
DEMO_IMAGE = "leakwatch-demo:test"
BASE_IMAGES = ("debian:12", "debian:12-slim")
CACHE = os.environ.get("LW_TEST_CACHE") or "/var/cache/leakwatch-test"
BASE_TARBALL = "debian-12-minbase.tar.gz"
BASE_MAX_AGE_S = 30 * 86400  # a month-old base is made again (its apt lists come from the image build anyway)

DEMO_EXE = "leakwatch-demo"
LEAK_FUNCTION = "remember_session"
MEMORY_LIMIT = 10 << 20      # the demo starts near 5 MiB and leaks ~190 KB/s: an OOM kill every ~30 s
INTERVAL = "0.5"
# ~44 samples/s of the leak: a 12 s incarnation's rate is known to ~5% (one
# standard error). At 16k it was ~11% (measured in docker: sd 0.17 over 12
# replicas, mean 0.98), and the +-30% checks below failed CI now and then.
SAMPLE_BYTES = "4k"
APP_UID = 10001              # as docker/kubernetes/leaky-app.yaml runs the app

PHASES = []                  # (what, seconds): printed at the end
ENGINE_DIR_PREFIX = "lwdocker."


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, even
    by SIGKILL (a ctest timeout), so an engine started here never outlives
    it (dockerd stops its containers on SIGTERM)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(path + "/")]


def _remove_engine_dir(path):
    """Removes an engine's directory, never through a mount left in it (the
    engine's network namespace file, a container's layers). False if
    something is still mounted there."""
    for m in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    if _mounts_under(path):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def _remove_dead_engine_dirs():
    """Directories of engines this test started in runs that were killed
    (their dockerd is gone): gigabytes of image layers otherwise left in
    the temporary directory."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), ENGINE_DIR_PREFIX + "*")) + glob.glob(
            os.path.join("/tmp", ENGINE_DIR_PREFIX + "*")):
        if not os.path.isfile(os.path.join(d, "daemon.json")):
            continue
        try:  # a run still setting its engine up (another suite beside this one)
            with open(os.path.join(d, "owner.pid")) as f:
                os.kill(int(f.read().strip() or 0), 0)
            continue
        except PermissionError:
            continue
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(d, "dockerd.pid")) as f:
                pid = int(f.read().strip() or 0)
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                alive = d.encode() in f.read()
        except (OSError, ValueError):
            alive = False
        if not alive and _remove_engine_dir(d):
            _say("removed %s, left by an earlier run that was killed" % d)


def _say(text):
    print(text, flush=True)


def _phase(what, started):
    took = time.monotonic() - started
    PHASES.append((what, took))
    _say("  [%6.1fs] %s" % (took, what))
    return took


def _tail(text, lines=40):
    text = text.decode(errors="replace") if isinstance(text, bytes) else (text or "")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def demo_leak_rate():
    """The demo's leak, from its source: each of its worker threads
    remembers one session per request and sleeps between requests; the
    session's history buffer is the bulk of it (the site the report puts
    first). Bytes per second of that buffer, an upper bound: handling a
    request takes a little time too."""
    with open(DEMO_SOURCE) as f:
        src = f.read()
    history = re.search(r"history\.resize\((\d+)\)", src)
    sleep = re.search(r"sleep_for\(std::chrono::milliseconds\((\d+)\)\)", src)
    workers = len(re.findall(r"\(worker, \d+,", src))
    if not (history and sleep and workers):
        raise AssertionError("%s changed: cannot tell its leak rate (history %s, sleep %s, workers %d)" % (
            DEMO_SOURCE, history, sleep, workers))
    line = src[:history.start()].count("\n") + 1
    return int(history.group(1)) * workers * 1000.0 / int(sleep.group(1)), line


def ignore_list(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.strip().startswith("#")]


def apt_debian_mirror():
    """The Debian archive apt uses here: (uri, where it was read), from the
    first enabled `deb` entry for a release suite (not -security or
    -updates) in /etc/apt/sources.list(.d); bookworm preferred. None if
    apt names none."""
    entries = []  # (uri, suites, where)
    base = "/etc/apt"
    one_line = [os.path.join(base, "sources.list")] + sorted(glob.glob(os.path.join(base, "sources.list.d", "*.list")))
    for path in one_line:
        try:
            with open(path) as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if not line.startswith("deb "):
                        continue
                    line = re.sub(r"\[[^]]*\]", " ", line[4:])
                    words = line.split()
                    if len(words) >= 2:
                        entries.append((words[0], [words[1]], path))
        except OSError:
            pass
    for path in sorted(glob.glob(os.path.join(base, "sources.list.d", "*.sources"))):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for para in re.split(r"\n\s*\n", text):
            fields = {}
            key = None
            for line in para.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and key:
                    fields[key] += " " + line.strip()
                    continue
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split(), path))
    release = [(u, s, p) for u, s, p in entries
               if u.startswith(("http://", "https://", "file:/")) and any("-" not in x and "/" not in x for x in s)]
    for uri, suites, path in release:
        if "bookworm" in suites:
            return uri, path
    return (release[0][0], release[0][2]) if release else None


class Engine:
    """A Docker engine to run the test on: the one that answers, or one
    started here (own data root, state, socket and config, all in a
    temporary directory)."""

    def __init__(self):
        self.docker_bin = os.environ.get("LW_DOCKER") or shutil.which("docker")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("LEAKWATCH_") or k == "LD_PRELOAD":
                del self.env[k]
        self.env["DOCKER_BUILDKIT"] = "0"
        self.proc = None
        self.tmp = None
        self.own = False
        self.log_path = None
        self.info = {}

    # --- running docker ---

    def run(self, *args, timeout=120, check=True, input=None, text=True):
        cmd = [self.docker_bin, *args]
        try:
            p = subprocess.run(cmd, env=self.env, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=text, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("`docker %s` did not finish within %ds\nstdout: %s\nstderr: %s" % (
                " ".join(args), timeout, _tail(e.stdout), _tail(e.stderr)))
        if check and p.returncode != 0:
            raise AssertionError("`docker %s` failed (exit %d)\nstdout: %s\nstderr: %s" % (
                " ".join(args), p.returncode, _tail(p.stdout), _tail(p.stderr)))
        return p

    def answers(self, timeout=20):
        try:
            p = subprocess.run([self.docker_bin, "info", "--format", "{{json .}}"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
        try:
            info = json.loads(p.stdout)
        except ValueError:
            return None
        return info if info.get("ServerVersion") else None

    # --- starting and stopping an engine ---

    def start(self):
        """None when an engine answers (found or started), else why not."""
        if not self.docker_bin or not os.access(self.docker_bin, os.X_OK):
            return "no docker CLI (Debian package docker.io)"
        info = self.answers()
        if info:
            self.info = info
            return None
        dockerd = os.environ.get("LW_DOCKERD") or shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.access(dockerd, os.X_OK):
            return "no Docker engine answers and there is no dockerd to start (Debian package docker.io)"
        if os.geteuid() != 0:
            return "no Docker engine answers, and starting dockerd needs root"
        _remove_dead_engine_dirs()
        self.tmp = tempfile.mkdtemp(prefix=ENGINE_DIR_PREFIX)
        if len(self.tmp) > 60:  # the engine's sockets live under it: keep paths short
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = tempfile.mkdtemp(prefix=ENGINE_DIR_PREFIX, dir="/tmp")
        os.chmod(self.tmp, 0o711)
        with open(os.path.join(self.tmp, "owner.pid"), "w") as f:  # before daemon.json: see _remove_dead_engine_dirs
            f.write("%d\n" % os.getpid())
        sock = os.path.join(self.tmp, "docker.sock")
        config = os.path.join(self.tmp, "daemon.json")
        with open(config, "w") as f:
            f.write("{}\n")  # not the machine's /etc/docker/daemon.json
        os.makedirs(os.path.join(self.tmp, "client"))
        self.log_path = os.path.join(self.tmp, "dockerd.log")
        cmd = [dockerd, "--bridge=none", "--iptables=false", "--config-file", config,
               "--data-root", os.path.join(self.tmp, "data"), "--exec-root", os.path.join(self.tmp, "exec"),
               "--pidfile", os.path.join(self.tmp, "dockerd.pid"), "-H", "unix://" + sock]
        if os.environ.get("LW_DOCKER_STORAGE_DRIVER"):
            cmd += ["--storage-driver", os.environ["LW_DOCKER_STORAGE_DRIVER"]]
        # (otherwise dockerd picks one: overlay2 where the data root allows it, vfs at worst)
        daemon_env = dict(self.env)
        path = daemon_env.get("PATH", "").split(":")
        daemon_env["PATH"] = ":".join(path + [d for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin") if d not in path])
        self.env["DOCKER_HOST"] = "unix://" + sock
        self.env["DOCKER_CONFIG"] = os.path.join(self.tmp, "client")  # not the machine's ~/.docker
        started = time.monotonic()
        with open(self.log_path, "wb") as log:  # containerd, runc and docker-init are found on PATH
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             env=daemon_env, preexec_fn=_die_with_parent)
            except OSError as e:
                return "cannot start %s: %s" % (dockerd, e)
        self.own = True
        deadline = started + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "dockerd exited (%d) at start: %s" % (self.proc.returncode, self._log_error())
            info = self.answers(timeout=10)
            if info:
                self.info = info
                _phase("started dockerd %s (storage driver %s)" % (info["ServerVersion"], info.get("Driver")),
                       started)
                return None
            time.sleep(0.5)
        return "dockerd did not answer within 60s: %s" % self._log_error()

    def _log_error(self):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return "(no log)"
        bad = [l for l in lines if "level=error" in l or "level=fatal" in l or l.startswith("failed")]
        return (bad or lines or ["(empty log)"])[-1][:400]

    def stop(self):
        if not self.own:
            return
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
        if self.tmp:
            if not _remove_engine_dir(self.tmp):
                _say("note: not removing %s: still mounted: %s" % (self.tmp, _mounts_under(self.tmp)))
            self.tmp = None

    # --- helpers ---

    def exists(self, kind, name):
        return self.run(kind, "inspect", name, check=False, timeout=30).returncode == 0

    def inspect(self, name):
        return json.loads(self.run("inspect", name, timeout=30).stdout)[0]

    def logs(self, names):
        out = []
        for n in names:
            if not self.exists("container", n):
                continue
            state = self.run("inspect", "-f", "{{json .State}} restarts={{.RestartCount}}", n, check=False).stdout
            p = self.run("logs", "--tail", "60", n, check=False, timeout=30)
            out.append("--- docker logs %s (state %s) ---\n%s%s" % (n, state.strip(), p.stdout, p.stderr))
        return "\n".join(out)


class ContainerFilesAgree(unittest.TestCase):
    """What needs no engine: the ignore files, the YAML, compose's view."""

    def test_both_dockerignore_files_hold_the_same_list(self):
        buildkit, classic = ignore_list(BUILDKIT_IGNORE), ignore_list(CLASSIC_IGNORE)
        self.assertEqual(classic, buildkit, "/.dockerignore (classic builder) and docker/Dockerfile.dockerignore "
                                            "(BuildKit) must hold the same list")
        patterns = ignore_patterns(CLASSIC_IGNORE)
        for path in ("build/CMakeCache.txt", ".git/config", "tests/e2e/cases/test_docker_engine.py", "README.md"):
            self.assertTrue(ignored(path, patterns), "%s is sent to the builder" % path)
        for path in ("CMakeLists.txt", "shim/runtime/identity.cpp", "tests/e2e/programs/demo_service.cpp"):
            self.assertFalse(ignored(path, patterns), "%s is not sent to the builder" % path)

    def _yaml(self):
        if yaml is None:
            reason = "python3 has no yaml module (Debian package python3-yaml)"
            print("SKIP %s: %s" % (self.id(), reason), flush=True)
            self.skipTest(reason)

    def test_manifests_parse_and_are_kubernetes_objects(self):
        self._yaml()
        self.assertTrue(MANIFESTS)
        images = set()
        for path in MANIFESTS:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            self.assertTrue(docs, "%s holds no object" % path)
            for d in docs:
                where = "%s: %s" % (os.path.basename(path), d.get("kind"))
                self.assertIsInstance(d, dict, path)
                for key in ("apiVersion", "kind", "metadata"):
                    self.assertIn(key, d, where)
                self.assertRegex(d["metadata"].get("name", ""), r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", where)
                spec = d.get("spec", {})
                if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                    self.assertEqual(spec["selector"]["matchLabels"].items() - spec["template"]["metadata"]["labels"]
                                     .items(), set(), "%s: the selector does not match the pod's labels" % where)
                    spec = spec["template"]["spec"]
                if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"):
                    volumes = {v["name"] for v in spec.get("volumes", [])}
                    for c in spec.get("initContainers", []) + spec["containers"]:
                        self.assertTrue(c.get("name") and c.get("image"), where)
                        images.add(c["image"])
                        for m in c.get("volumeMounts", []):
                            self.assertIn(m["name"], volumes, "%s: container %s mounts an undeclared volume" % (
                                where, c["name"]))
                            self.assertTrue(m["mountPath"].startswith("/"), where)
                        for e in c.get("env", []):
                            self.assertIsInstance(e.get("value", ""), str, "%s: env values are strings" % where)
        self.assertEqual({i.split(":")[0] for i in images}, {"leakwatch", "leakwatch-demo"}, images)

    def test_compose_file_is_valid_for_docker_compose(self):
        self._yaml()
        with open(COMPOSE) as f:
            c = yaml.safe_load(f)
        self.assertEqual({k for k in c if not k.startswith("x-")} - {"services", "volumes", "networks", "version"},
                         set(), "top-level keys that docker-compose v1 (Debian 12's) refuses")
        compose = shutil.which("docker-compose")
        if not compose:
            reason = "docker-compose is not installed (Debian package docker-compose)"
            print("SKIP %s: %s" % (self.id(), reason), flush=True)
            self.skipTest(reason)
        env = dict(os.environ)
        env.pop("DOCKER_HOST", None)
        p = subprocess.run([compose, "-f", COMPOSE, "config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, "docker-compose -f docker/compose.yaml config:\n%s" % p.stderr)
        resolved = yaml.safe_load(p.stdout)
        app = resolved["services"]["app"]
        self.assertEqual(os.path.realpath(app["build"]["context"]), REPO)
        self.assertEqual(app["build"]["target"], "demo")
        self.assertEqual(app["environment"]["LD_PRELOAD"], "/leakwatch/libleakwatch.so")
        self.assertIn("tools", resolved["services"]["report"].get("profiles", []))


class DockerEngine(unittest.TestCase):
    """Images built from the repository, run on a real engine."""

    engine = None

    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        PHASES.clear()
        cls.names = "lwt%06x" % random.getrandbits(24)  # every container and volume of this run
        cls.created = {"tags": [], "layers": [], "base": []}  # images, removed in that order from an engine not ours
        cls.engine = Engine()
        cls.addClassCleanup(cls._cleanup_class)
        reason = cls.engine.start()
        if reason:
            print("SKIP %s: %s" % (cls.__name__, reason), flush=True)
            raise unittest.SkipTest(reason)
        info = cls.engine.info
        _say("engine: Docker %s, %s storage, cgroup v%s, %s (%s)" % (
            info.get("ServerVersion"), info.get("Driver"), info.get("CgroupVersion"),
            "started here" if cls.engine.own else "already running", cls.engine.env.get("DOCKER_HOST", "default")))
        cls._base_image()
        cls._build()
        cls.shim_volume = cls._volume("shim")
        started = time.monotonic()
        # The init container, as the manifests run it: read-only, no capabilities, default command.
        p = cls.engine.run("run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
                           "--security-opt", "no-new-privileges", "-v", cls.shim_volume + ":/leakwatch", TOOL_IMAGE,
                           timeout=120)
        cls.install_output = p.stdout
        _phase("init container installed the shim", started)

    @classmethod
    def _cleanup_class(cls):
        e = cls.engine
        started = time.monotonic()
        try:
            if e and e.info:  # an engine that answered
                ours = e.run("ps", "-aq", "--filter", "name=^" + cls.names, check=False).stdout.split()
                if ours:
                    e.run("rm", "-f", *ours, check=False, timeout=120)
                vols = e.run("volume", "ls", "-q", "--filter", "name=" + cls.names, check=False).stdout.split()
                vols = [v for v in vols if v.startswith(cls.names)]
                if vols:
                    e.run("volume", "rm", "-f", *vols, check=False, timeout=120)
                if not e.own:  # an engine of the machine's: take back only what this test made
                    for img in cls.created["tags"]:
                        e.run("rmi", img, check=False, timeout=120)
                    layers = list(cls.created["layers"])
                    for _ in range(5):  # build stages: children before parents
                        layers = [i for i in layers if e.run("rmi", i, check=False, timeout=120).returncode != 0
                                  and e.exists("image", i)]
                    for img in cls.created["base"]:
                        e.run("rmi", img, check=False, timeout=120)
        finally:
            if e:
                e.stop()
        _phase("cleaned up%s" % (" (engine stopped, its directory removed)" if e and e.own else ""), started)
        _say("docker engine test: %.0fs in all; %s" % (
            time.monotonic() - cls.t0, ", ".join("%s %.0fs" % (w, t) for w, t in PHASES)))

    @classmethod
    def _volume(cls, what):
        name = "%s-%s" % (cls.names, what)
        cls.engine.run("volume", "create", name, timeout=60)
        return name

    @classmethod
    def _base_image(cls):
        e = cls.engine
        have = [i for i in BASE_IMAGES if e.exists("image", i)]
        if len(have) == len(BASE_IMAGES):
            _say("base images: the engine has %s" % ", ".join(have))
            return
        if have:  # debian:12 without -slim (or the reverse): tag the one it has
            (missing,) = [i for i in BASE_IMAGES if i not in have]
            e.run("tag", have[0], missing)
            cls.created["base"].append(missing)
            return
        started = time.monotonic()
        tarball = os.path.join(CACHE, BASE_TARBALL)
        fresh = os.path.exists(tarball) and time.time() - os.path.getmtime(tarball) < BASE_MAX_AGE_S
        if not fresh:
            tarball = cls._debootstrap(tarball)
        e.run("import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "--change", 'CMD ["bash"]', tarball, BASE_IMAGES[0], timeout=300)
        e.run("tag", BASE_IMAGES[0], BASE_IMAGES[1])
        cls.created["base"] += list(BASE_IMAGES)
        _phase("base image %s: %s" % (" = ".join(BASE_IMAGES), "imported from the cached tarball" if fresh else
                                      "debootstrap'd and imported"), started)

    @classmethod
    def _debootstrap(cls, cached):
        """Makes the base tarball; returns its path (in the cache when writable)."""
        debootstrap = shutil.which("debootstrap") or (
            "/usr/sbin/debootstrap" if os.access("/usr/sbin/debootstrap", os.X_OK) else None)
        if not debootstrap:
            reason = "the engine has no debian:12 and debootstrap is not installed (Debian package debootstrap)"
            print("SKIP %s: %s" % (cls.__name__, reason), flush=True)
            raise unittest.SkipTest(reason)
        mirror = apt_debian_mirror()
        if not mirror:
            raise AssertionError("the engine has no debian:12 and apt names no Debian mirror in /etc/apt to "
                                 "debootstrap one from")
        work = tempfile.mkdtemp(prefix="lwbase.")
        cls.addClassCleanup(shutil.rmtree, work, True)
        root = os.path.join(work, "rootfs")
        started = time.monotonic()
        p = subprocess.run([debootstrap, "--variant=minbase", "bookworm", root, mirror[0]], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=1500, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise AssertionError("debootstrap --variant=minbase bookworm %s failed (%d):\n%s" % (
                mirror[0], p.returncode, _tail(p.stdout)))
        _phase("debootstrap bookworm from %s (as %s says)" % (mirror[0], mirror[1]), started)
        # As Debian's own images: no package cache, no package lists.
        for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in glob.glob(os.path.join(root, d, "*")):
                if os.path.isfile(f):
                    os.unlink(f)
        out = os.path.join(work, BASE_TARBALL)
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-czf", out, "."], check=True, timeout=600)
        shutil.rmtree(root, ignore_errors=True)
        try:
            os.makedirs(CACHE, exist_ok=True)
            tmp = cached + ".%d.tmp" % os.getpid()
            shutil.copyfile(out, tmp)
            os.replace(tmp, cached)
            os.unlink(out)
            return cached
        except OSError as e:
            _say("note: base tarball not cached in %s: %s" % (CACHE, e))
            return out

    @classmethod
    def _build(cls):
        e = cls.engine
        before = set(e.run("images", "-aq", "--no-trunc").stdout.split())
        # The last stage first: the classic builder builds every stage up to
        # its target, so the demo's build then comes from its cache.
        for target, tag in (("leakwatch", TOOL_IMAGE), ("demo", DEMO_IMAGE)):
            started = time.monotonic()
            p = cls._docker_build(target, tag)
            m = re.search(r"Sending build context to Docker daemon\s+([0-9.]+)\s*([kMG]?B)", p.stdout)
            if m:
                size = float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]
                assert size < 20e6, "the build context is %s%s: /.dockerignore did not keep build/ and .git out" % (
                    m.group(1), m.group(2))
            cached = len(re.findall(r"Using cache", p.stdout))
            _phase("docker build --target %s -t %s (%d steps from cache)" % (target, tag, cached), started)
            cls.created["tags"].append(tag)
        after = set(e.run("images", "-aq", "--no-trunc").stdout.split())
        cls.created["layers"] = sorted(after - before)  # the untagged build stage

    @classmethod
    def _docker_build(cls, target, tag):
        e = cls.engine
        cmd = ["build", "--network", "host", "-f", os.path.relpath(DOCKERFILE, REPO), "--target", target, "-t", tag,
               "."]
        try:
            p = subprocess.run([e.docker_bin, *cmd], env=e.env, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as x:
            raise AssertionError("`docker %s` did not finish within 1800s:\n%s" % (" ".join(cmd), _tail(x.stdout, 60)))
        if p.returncode != 0:
            raise AssertionError("`DOCKER_BUILDKIT=0 docker %s` failed (exit %d):\n%s" % (
                " ".join(cmd), p.returncode, _tail(p.stdout, 80)))
        return p

    # --- per test ---

    def setUp(self):
        self.containers = []
        # (inside the engine's directory when it is ours: a killed run's copy of an image goes with it)
        self.tmp = tempfile.mkdtemp(prefix="test.", dir=self.engine.tmp)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self._remove_containers)

    def _remove_containers(self):
        for c in self.containers:
            self.engine.run("rm", "-f", c, check=False, timeout=120)

    @contextlib.contextmanager
    def logs_on_failure(self, *names):
        try:
            yield
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.engine.logs(names or self.containers))) from None

    def docker(self, *args, **kw):
        return self.engine.run(*args, **kw)

    def app_args(self, name, dumps, *extra, hostname=None):
        """`docker run` options for the demo with the shim injected the way
        the manifests do it: four environment variables and two volumes."""
        args = ["--name", name, "--network", "none", "--read-only",
                "-v", self.shim_volume + ":/leakwatch:ro", "-v", dumps + ":/dumps",
                "-e", "LD_PRELOAD=/leakwatch/libleakwatch.so", "-e", "LEAKWATCH_DIR=/dumps",
                "-e", "LEAKWATCH_INTERVAL=" + INTERVAL, "-e", "LEAKWATCH_SAMPLE_BYTES=" + SAMPLE_BYTES,
                "-e", "LEAKWATCH_MATCH=" + DEMO_EXE, *extra]
        if hostname:
            args += ["--hostname", hostname]
        self.containers.append(name)
        return args

    def report(self, dumps, *options, root=None, user=None, fmt="json"):
        """`leakwatch report` in the leakwatch image, on the dump volume read-only."""
        args = ["run", "--rm", "--network", "none", "--read-only", "-v", dumps + ":/dumps:ro"]
        if user:
            args += ["--user", user]
        if root:
            args += ["-v", root + ":/approot:ro"]
        args += [TOOL_IMAGE, "leakwatch", "report", "/dumps", "--format", fmt, *options]
        if root:
            args += ["--root", "/approot"]
        p = self.docker(*args, timeout=180)
        return json.loads(p.stdout) if fmt == "json" else p

    def dump_files(self, dumps):
        p = self.docker("run", "--rm", "--network", "none", "-v", dumps + ":/dumps:ro", TOOL_IMAGE, "ls", "/dumps",
                        timeout=60)
        return [f for f in p.stdout.split() if f.endswith(".lwdump") and not f.startswith(".")]

    def export_rootfs(self, image):
        """The image's filesystem, unpacked into a directory (docker create + export)."""
        root = os.path.join(self.tmp, "approot")
        os.makedirs(root)
        name = "%s-rootfs" % self.names
        self.containers.append(name)
        self.docker("create", "--name", name, "--network", "none", image, timeout=60)
        archive = os.path.join(self.tmp, "rootfs.tar")
        with open(archive, "wb") as f:
            p = subprocess.run([self.engine.docker_bin, "export", name], env=self.engine.env, stdout=f,
                               stderr=subprocess.PIPE, timeout=300, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, "docker export: %s" % p.stderr)
        p = subprocess.run(["tar", "-C", root, "-xf", archive, "--exclude=dev/*"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, "unpacking the exported image: %s" % p.stderr)
        os.unlink(archive)
        self.docker("rm", name, timeout=60)
        return root

    def leak_site(self, rep, expect_processes=None):
        """The site that names the demo's leaking function: it must be the first one, and growing."""
        sites = [s for s in rep["sites"] if any(LEAK_FUNCTION in (f.get("function") or "") for f in s["frames"])]
        summary = "\n".join("%s %.0f B/s %s" % (s["verdict"], s["growth_bytes_per_s"], " <- ".join(
            "%s %s:%s" % (f.get("function"), os.path.basename(f.get("file") or "-"), f.get("line"))
            for f in s["frames"][:6])) for s in rep["sites"][:6])
        if sites:  # the leak's timeline per process, (seconds, KiB), for a rate that reads off
            summary += "\nseries of the first site naming %s:\n%s" % (LEAK_FUNCTION, "\n".join(
                "  process %s: %s" % (ser.get("process"), " ".join("%.2f:%.0f" % (t, b / 1024) for t, b in ser["points"]))
                for ser in sites[0].get("series", [])))
        self.assertTrue(sites, "no site names %s:\n%s" % (LEAK_FUNCTION, summary))
        top = rep["sites"][0]
        self.assertIs(top, sites[0], "the leak is not the first site:\n%s" % summary)
        self.assertEqual(top["verdict"], "growing", summary)
        if expect_processes is not None:
            self.assertEqual(top["processes"], expect_processes, summary)
        return top, summary

    # --- the tests ---

    def test_images_and_the_manifests_agree(self):
        """The init container filled the volume; the images hold what the
        manifests and compose file call."""
        self.assertIn("shim installed in /leakwatch", self.install_output)
        listing = self.docker("run", "--rm", "--network", "none", "-v", self.shim_volume + ":/leakwatch:ro",
                              TOOL_IMAGE, "ls", "-l", "/leakwatch").stdout
        names = sorted(l.split()[-1] for l in listing.splitlines() if l.startswith("-"))
        self.assertEqual(names, ["libleakwatch.so", "liblzma.so.5", "libunwind.so.8"], listing)
        # The app image has no libunwind of its own: the bundle is what makes the shim load.
        p = self.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", DEMO_IMAGE, "-c",
                        "ls /lib/*/libunwind.so.8 /usr/lib/*/libunwind.so.8 2>/dev/null; true")
        self.assertEqual(p.stdout.strip(), "", "the demo image has a libunwind of its own")
        tool = self.engine.inspect(TOOL_IMAGE)["Config"]
        demo = self.engine.inspect(DEMO_IMAGE)["Config"]
        self.assertEqual(tool["Cmd"], ["leakwatch-install-shim", "/leakwatch"])
        self.assertEqual(demo["Entrypoint"], [DEMO_EXE])
        p = self.docker("run", "--rm", "--network", "none", TOOL_IMAGE, "sh", "-c",
                        "for c in leakwatch-install-shim leakwatch sleep; do command -v $c; done")
        self.assertEqual(len(p.stdout.split()), 3, "not all on the leakwatch image's PATH:\n" + p.stdout)
        if yaml is None:
            return
        # (where, image, entrypoint override, arguments, env): Kubernetes'
        # command/args are Docker's entrypoint/cmd; compose's command is the cmd.
        uses = []
        for path in MANIFESTS:
            with open(path) as f:
                for d in yaml.safe_load_all(f):
                    spec = (d or {}).get("spec", {})
                    spec = spec.get("template", {}).get("spec", spec)
                    for c in spec.get("initContainers", []) + spec.get("containers", []):
                        env = {e["name"]: e.get("value") for e in c.get("env", [])}
                        uses.append((os.path.basename(path), c["image"], c.get("command"), c.get("args"), env))
        with open(COMPOSE) as f:
            for name, s in yaml.safe_load(f)["services"].items():
                uses.append(("compose.yaml " + name, s["image"], s.get("entrypoint"), s.get("command"),
                             s.get("environment") or {}))
        checked = 0
        for where, image, entrypoint, args, env in uses:
            if image.split(":")[0] == "leakwatch-demo":
                self.assertIsNone(entrypoint, "%s: the demo image's entrypoint is its program" % where)
                self.assertEqual(env.get("LEAKWATCH_MATCH"), os.path.basename(demo["Entrypoint"][0]),
                                 "%s: LEAKWATCH_MATCH must name the program the image runs" % where)
                self.assertEqual(env.get("LD_PRELOAD"), "/leakwatch/libleakwatch.so", where)
            else:
                self.assertEqual(image.split(":")[0], "leakwatch", where)
                command = entrypoint or args or tool["Cmd"]
                p = self.docker("run", "--rm", "--network", "none", TOOL_IMAGE, "sh", "-c", 'command -v "$1"', "sh",
                                command[0], check=False)
                self.assertEqual(p.returncode, 0, "%s: %s is not in the leakwatch image" % (where, command[0]))
                if command[0] == "leakwatch" and len(command) > 1:
                    # The reporter command the manifest runs exists in this build, with every option it passes.
                    p = self.docker("run", "--rm", "--network", "none", TOOL_IMAGE, "leakwatch", command[1], "--help",
                                    check=False)
                    self.assertEqual(p.returncode, 0, "%s: `leakwatch %s --help` in the image: %s" % (
                        where, command[1], p.stderr))
                    for opt in (w.split("=")[0] for w in command[2:] if w.startswith("--")):
                        self.assertIn(opt + " ", p.stdout, "%s: `leakwatch %s` has no %s" % (where, command[1], opt))
            checked += 1
        self.assertGreaterEqual(checked, 5)

    def test_oom_restart_loop_then_report_from_the_volume(self):
        if not self.engine.info.get("MemoryLimit", True):
            reason = "the engine cannot limit memory here (docker info: no memory limit support)"
            print("SKIP %s: %s" % (self.id(), reason), flush=True)
            self.skipTest(reason)
        expected, leak_line = demo_leak_rate()
        dumps = self._volume("oom-dumps")
        name = "%s-oom" % self.names
        limit = "%dm" % (MEMORY_LIMIT >> 20)
        since = int(time.time()) - 1
        started = time.monotonic()
        # Restarts bounded all the same: a loop that outlived a killed test would end by itself.
        self.docker("run", "-d", *self.app_args(name, dumps, "--memory", limit, "--memory-swap", limit,
                                                "--restart", "on-failure:5"), DEMO_IMAGE, "86400")
        with self.logs_on_failure(name):
            oom_seen = False
            deadline = time.monotonic() + 180
            state = {}
            while True:
                c = self.engine.inspect(name)
                state = dict(c["State"], RestartCount=c["RestartCount"])
                oom_seen = oom_seen or state.get("OOMKilled", False)
                if c["RestartCount"] >= 1 and state["Running"]:
                    files = self.dump_files(dumps)
                    per_instance = {}
                    for f in files:
                        per_instance.setdefault(f.split(".")[-3], []).append(f)
                    counts = sorted(len(v) for v in per_instance.values())
                    if len(counts) >= 2 and min(counts) >= 20:  # the one restarted: 10 s
                        break
                self.assertLess(time.monotonic(), deadline, "no restart with 10 s of dumps from the next incarnation "
                                                            "within 180s; last state %s" % state)
                time.sleep(1)
            self.docker("stop", "-t", "1", name, timeout=60)
            loop = _phase("OOM-restart loop: %d restarts, dumps of %d incarnations" % (
                state["RestartCount"], len(counts)), started)
            c = self.engine.inspect(name)
            self.assertEqual(c["HostConfig"]["Memory"], MEMORY_LIMIT)
            self.assertTrue(c["HostConfig"]["ReadonlyRootfs"])
            events = self.docker("events", "--since", str(since), "--until", "%.3f" % time.time(), "--filter",
                                 "container=" + c["Id"], "--format", "{{.Action}} {{index .Actor.Attributes "
                                 "\"exitCode\"}}", timeout=60).stdout.splitlines()
            ooms = [e for e in events if e.startswith("oom")]
            killed = [e for e in events if e.strip() == "die 137"]  # the OOM kills, and `docker stop` at the end
            self.assertTrue(oom_seen and ooms, "no OOM kill: OOMKilled seen %s, events %s" % (oom_seen, events))
            _say("  engine: RestartCount %d, OOMKilled seen, %d oom events, %d deaths by SIGKILL (the last by "
                 "docker stop), %.0fs" % (c["RestartCount"], len(ooms), len(killed), loop))

            started = time.monotonic()
            root = self.export_rootfs(DEMO_IMAGE)
            self.assertTrue(os.path.isfile(os.path.join(root, "usr/local/bin", DEMO_EXE)))
            rep = self.report(dumps, root=root)
            text = self.report(dumps, root=root, fmt="text").stdout
            bare = self.report(dumps)
            _phase("reports from the dump volume", started)
            _say("--- leakwatch report /dumps --root /approot (in %s) ---\n%s" % (TOOL_IMAGE, text))

            procs = rep["processes"]
            self.assertGreaterEqual(len(procs), 2, "dumps of one incarnation only")
            self.assertLessEqual(len(procs), c["RestartCount"] + 1, "more processes than incarnations")
            for p in procs:
                self.assertEqual((p["pid"], p["executable"]), (1, "/usr/local/bin/" + DEMO_EXE), p["cmdline"])
                self.assertEqual(p["container"], c["Id"], "the container id is not the engine's")
                self.assertEqual(p["host"], c["Config"]["Hostname"])
                self.assertFalse(p["exited_normally"], "an incarnation exited normally?")
            # Incarnations in the order they ran, counted from 1 (as the text does).
            by_start = sorted(procs, key=lambda p: p["first_dump_time_ns"])
            self.assertEqual([p["incarnation"] for p in by_start], list(range(1, len(procs) + 1)))
            (svc,) = rep["services"]
            self.assertEqual((svc["incarnations"], svc["at_once"]), (len(procs), 1), svc)
            self.assertIn("%d incarnations one after another" % len(procs), text)
            # The OOM-killed incarnations wrote their dumps up to near the limit.
            peaks = [p.get("memory", {}).get("parts", {}).get("rss", {}).get("bytes") for p in procs]
            if None not in peaks:
                self.assertGreater(max(peaks), 0.6 * MEMORY_LIMIT, "no dump near the memory limit: %s" % peaks)

            site, summary = self.leak_site(rep, expect_processes=len(procs))
            leaf = next(f for f in site["frames"] if LEAK_FUNCTION in (f.get("function") or ""))
            self.assertEqual((os.path.basename(leaf.get("file") or ""), leaf.get("line")),
                             ("demo_service.cpp", leak_line), "file:line of the leak, from the image's filesystem")
            rate = site["growth_bytes_per_s"]
            _say("  leak: %.0f B/s per incarnation (the demo's source: %.0f B/s), fleet %.0f B/s, interval %s" % (
                rate, expected, site["fleet_growth_bytes_per_s"], site["growth_interval_bytes_per_s"]))
            self.assertLess(abs(rate / expected - 0.95), 0.3, "the rate per incarnation is off:\n" + summary)
            self.assertEqual(site["fleet_growth_bytes_per_s"], rate, "incarnations one after another were summed")
            # Each incarnation alone (selected by its instance) leaks at the same rate.
            for p in procs:
                if p["duration_s"] < 10:
                    continue
                one = self.report(dumps, "--instance", p["instance"])
                self.assertEqual([q["instance"] for q in one["processes"]], [p["instance"]])
                s, summary = self.leak_site(one, expect_processes=1)
                self.assertLess(abs(s["growth_bytes_per_s"] / expected - 0.95), 0.3,
                                "incarnation %d: %s" % (p["incarnation"], summary))
            # Without the image's filesystem the frames are still named (the dumps carry the names), without lines.
            bsite, _ = self.leak_site(bare)
            bleaf = next(f for f in bsite["frames"] if LEAK_FUNCTION in (f.get("function") or ""))
            self.assertIsNone(bleaf.get("line"), "a line without --root? %s" % bleaf)
            self.assertTrue(any(DEMO_EXE in w for w in bare["warnings"]), bare["warnings"])

    def test_two_replicas_on_one_volume_selected_one_at_a_time(self):
        expected, _ = demo_leak_rate()
        dumps = self._volume("fleet-dumps")
        # The volume as a PVC with fsGroup gives it: writable by the app's user.
        self.docker("run", "--rm", "--network", "none", "-v", dumps + ":/dumps", TOOL_IMAGE, "chown",
                    "%d:%d" % (APP_UID, APP_UID), "/dumps")
        replicas = {}
        started = time.monotonic()
        for r in ("a", "b"):
            name = "%s-replica-%s" % (self.names, r)
            host = "leaky-app-%s" % r
            # As docker/kubernetes/leaky-app.yaml runs it: its uid, no capabilities, read-only root.
            cid = self.docker("run", "-d", *self.app_args(name, dumps, "--user", "%d:%d" % (APP_UID, APP_UID),
                                                          "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                                                          hostname=host), DEMO_IMAGE, "12").stdout.strip()
            replicas[host] = (name, cid)
        with self.logs_on_failure():
            for host, (name, cid) in replicas.items():
                code = self.docker("wait", name, timeout=90).stdout.strip()
                self.assertEqual(code, "0", "%s exited with %s" % (name, code))
                p = self.docker("logs", name, timeout=30)
                self.assertRegex(p.stdout, r"^demo-service: handled \d+ sessions, checksum \d+\n$")
                self.assertEqual(p.stderr, "", "the shim must be silent")
            _phase("two replicas ran at once on one dump volume", started)
            started = time.monotonic()
            user = "%d:%d" % (APP_UID, APP_UID)  # the reader runs as the app's user (dumps are 0600)
            rep = self.report(dumps, user=user)
            procs = rep["processes"]
            self.assertEqual(sorted(p["container"] for p in procs), sorted(cid for _, cid in replicas.values()))
            self.assertEqual(sorted(p["host"] for p in procs), sorted(replicas))
            self.assertEqual([p["pid"] for p in procs], [1, 1])
            self.assertTrue(all(p["exited_normally"] for p in procs))
            (svc,) = rep["services"]
            self.assertEqual(svc["at_once"], 2, "two replicas at once are a fleet: %s" % svc)
            site, summary = self.leak_site(rep, expect_processes=2)
            self.assertGreater(site["fleet_growth_bytes_per_s"], 1.5 * site["growth_bytes_per_s"],
                               "the fleet figure sums the replicas alive at once:\n" + summary)
            # PID 1 twice: the pid does not tell replicas apart.
            self.assertEqual(len(self.report(dumps, "--pid", "1", user=user)["processes"]), 2)
            by_container = {p["container"]: p for p in procs}
            selections = 0
            for host, (name, cid) in replicas.items():
                proc = by_container[cid]
                for option, value in (("--container", cid[:12]), ("--host", host), ("--instance", proc["instance"])):
                    one = self.report(dumps, option, value, user=user)
                    got = [(q["container"], q["host"], q["instance"]) for q in one["processes"]]
                    self.assertEqual(got, [(cid, host, proc["instance"])], "%s %s selected %s" % (option, value, got))
                    s, summary = self.leak_site(one, expect_processes=1)
                    self.assertEqual(s["fleet_growth_bytes_per_s"], s["growth_bytes_per_s"])
                    # One replica's leak, not the two replicas' sum (2x); the
                    # accuracy is checked in the OOM-restart case.
                    self.assertTrue(0.6 < s["growth_bytes_per_s"] / expected < 1.6,
                                    "%s %s: %s" % (option, value, summary))
                    selections += 1
            _phase("%d reports: the fleet, --pid 1, and each replica selected %d ways" % (
                selections + 2, selections // len(replicas)), started)


if __name__ == "__main__":
    unittest.main()
