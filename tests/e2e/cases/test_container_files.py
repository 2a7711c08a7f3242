"""Issue 4 (h): docker/ checked without a container engine.

Statically: the Dockerfile's build-context sources exist and are not
ignored, its build options are the project's, the scripts are executable
shell, the YAML files parse and wire the shim the same way (skipped, with
the reason printed, when Python has no yaml module), and every variable
the manifests and docs/kubernetes.md name is a documented one.

By running the Dockerfile's RUN logic here: docker/bundle-shim-libs.sh
bundles the shim's libraries, docker/install-shim.sh (the init
container) copies them into a "volume", and a program in a mount
namespace whose system libunwind and liblzma are hidden (an application
image without them), with a read-only root and a non-root user (as the
Kubernetes example runs it), is profiled through that copy.
"""
import fnmatch
import os
import re
import shlex
import shutil
import stat
import subprocess
import unittest

import lwtest
from test_container import LEAKER, MOUNT_NS, PID_NS, ContainerTestCase, require_unshare

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
DOCKER = os.path.join(REPO, "docker")
DOCKERFILE = os.path.join(DOCKER, "Dockerfile")
IGNORE = os.path.join(DOCKER, "Dockerfile.dockerignore")
MANIFESTS = [os.path.join(DOCKER, "kubernetes", "leaky-app.yaml"), os.path.join(DOCKER, "kubernetes", "dump-reader.yaml")]
COMPOSE = os.path.join(DOCKER, "compose.yaml")
SCRIPTS = [os.path.join(DOCKER, "install-shim.sh"), os.path.join(DOCKER, "bundle-shim-libs.sh")]
GUIDE = os.path.join(REPO, "docs", "kubernetes.md")

try:
    import yaml
except ImportError:
    yaml = None


def dockerfile_instructions(path):
    """(instruction, arguments) pairs, with continuation lines joined."""
    out, pending = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if pending and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            full = (pending + line).strip()
            pending = ""
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def ignore_patterns(path):
    pats = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                neg = line.startswith("!")
                pats.append((neg, os.path.normpath(line.lstrip("!").strip("/"))))
    return pats


def ignored(rel, patterns):
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    verdict = False
    for neg, pat in patterns:
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            verdict = not neg
    return verdict


def documented_variables():
    """LEAKWATCH_* names both parsed by the shim (config_table.def) and in the README's table."""
    with open(os.path.join(REPO, "shim", "dump", "config_table.def")) as f:
        parsed = set(re.findall(r'LW_VAR\(\w+,\s*"(LEAKWATCH_\w+)"', f.read()))
    with open(os.path.join(REPO, "README.md")) as f:
        readme = set(re.findall(r"^\| `(LEAKWATCH_\w+)` \|", f.read(), re.M))
    return parsed & readme


class DockerFilesStatic(unittest.TestCase):
    def test_dockerfile_sources_exist_and_are_sent(self):
        instrs = dockerfile_instructions(DOCKERFILE)
        froms = [a for i, a in instrs if i == "FROM"]
        self.assertTrue(froms[0].startswith("debian:12 "), froms)
        self.assertTrue(froms[-1].startswith("debian:12-slim"), "the final image should be small: %s" % froms[-1])
        patterns = ignore_patterns(IGNORE)
        copies = 0
        for instr, args in instrs:
            if instr not in ("COPY", "ADD"):
                continue
            words = shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            if any(f.startswith("--from=") for f in flags):
                continue
            for src in paths[:-1]:
                copies += 1
                rel = os.path.normpath(src)
                self.assertTrue(os.path.exists(os.path.join(REPO, rel)), "COPY source %s is not in the repo" % src)
                self.assertFalse(ignored(rel, patterns), "COPY source %s is excluded by %s" % (src, IGNORE))
        self.assertGreaterEqual(copies, 4)
        self.assertTrue(ignored("build/CMakeCache.txt", patterns), "build/ must not be sent")
        self.assertTrue(ignored(".git/config", patterns), ".git must not be sent")

    def test_dockerfile_builds_like_the_project(self):
        text = " ".join(a for i, a in dockerfile_instructions(DOCKERFILE) if i == "RUN")
        with open(os.path.join(REPO, "CMakeLists.txt")) as f:
            cmake = f.read()
        for opt in ("LEAKWATCH_BUILD_TESTS", "LEAKWATCH_BUILD_BENCH"):
            self.assertIn("option(%s " % opt, cmake)
            self.assertIn("-D%s=OFF" % opt, text)
        self.assertIn("cmake --install build --prefix /opt/leakwatch", text)
        self.assertIn("bundle-shim-libs.sh /opt/leakwatch/lib", text)
        # The build stage installs the project's own build dependencies.
        with open(os.path.join(REPO, ".ci", "packages.txt")) as f:
            ci = set(f.read().split())
        first_install = re.search(r"apt-get install (.*?)&&", text).group(1).split()
        pkgs = [p for p in first_install if not p.startswith("-")]
        self.assertIn("libunwind-dev", pkgs)
        self.assertEqual(sorted(set(pkgs) - ci - {"patchelf"}), [], "build packages missing from .ci/packages.txt")

    def test_scripts_are_executable_shell(self):
        for path in SCRIPTS:
            mode = os.stat(path).st_mode
            self.assertTrue(mode & stat.S_IXUSR and mode & stat.S_IXOTH, "%s is not executable" % path)
            with open(path) as f:
                self.assertEqual(f.readline().strip(), "#!/bin/sh", path)
            p = subprocess.run(["sh", "-n", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, "%s: %s" % (path, p.stderr))

    def _need_yaml(self):
        if yaml is None:
            reason = "python3 has no yaml module (Debian package python3-yaml)"
            print("SKIP %s: %s" % (self.id(), reason))
            self.skipTest(reason)

    def _load(self, path):
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]

    def test_kubernetes_manifest(self):
        self._need_yaml()
        docs = self._load(MANIFESTS[0])
        kinds = {d["kind"]: d for d in docs}
        self.assertIn("Deployment", kinds)
        pod = kinds["Deployment"]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (init,) = pod["initContainers"]
        self.assertEqual(init["command"][0], "leakwatch-install-shim")
        shim_mount = next(m for m in init["volumeMounts"] if m["mountPath"] == init["command"][1])
        self.assertIn("emptyDir", volumes[shim_mount["name"]])
        app = next(c for c in pod["containers"] if c["name"] == "app")
        # The serve sidecar reads the dumps; it is not profiled itself.
        for c in pod["containers"]:
            if c is not app:
                self.assertNotIn("LD_PRELOAD", {e["name"] for e in c.get("env", [])}, c["name"])
        env = {e["name"]: e.get("value") for e in app["env"]}
        mounts = {m["mountPath"]: m for m in app["volumeMounts"]}
        self.assertEqual(env["LD_PRELOAD"], init["command"][1] + "/libleakwatch.so")
        self.assertEqual(mounts[init["command"][1]]["name"], shim_mount["name"])
        self.assertEqual(env["LEAKWATCH_INTERVAL"], "60")
        self.assertTrue(env.get("LEAKWATCH_MATCH"))
        dumps = volumes[mounts[env["LEAKWATCH_DIR"]]["name"]]
        self.assertTrue("persistentVolumeClaim" in dumps or "hostPath" in dumps,
                        "the dump volume must outlive the pod: %s" % dumps)
        self.assertTrue(app["securityContext"]["readOnlyRootFilesystem"])
        self.assertIn("memory", app["resources"]["limits"])
        if "persistentVolumeClaim" in dumps:
            claim = dumps["persistentVolumeClaim"]["claimName"]
            self.assertEqual(kinds["PersistentVolumeClaim"]["metadata"]["name"], claim)
            reader = self._load(MANIFESTS[1])[0]["spec"]
            self.assertEqual(reader["volumes"][0]["persistentVolumeClaim"]["claimName"], claim)
            self.assertEqual(reader["securityContext"]["runAsUser"], pod["securityContext"]["runAsUser"],
                             "the reader must run as the app's user (dumps are 0600)")

    def test_compose_file(self):
        self._need_yaml()
        (c,) = self._load(COMPOSE)
        services = c["services"]
        shim = services["leakwatch-shim"]
        app = services["app"]
        self.assertEqual(shim["command"][0], "leakwatch-install-shim")
        target = shim["command"][1]
        shim_vol = next(v.split(":")[0] for v in shim["volumes"] if v.split(":")[1] == target)
        self.assertIn(shim_vol, c["volumes"])
        self.assertEqual(app["depends_on"]["leakwatch-shim"]["condition"], "service_completed_successfully")
        self.assertEqual(app["environment"]["LD_PRELOAD"], target + "/libleakwatch.so")
        app_vols = {v.split(":")[1]: v.split(":")[0] for v in app["volumes"]}
        self.assertEqual(app_vols[target], shim_vol)
        self.assertIn(app_vols[app["environment"]["LEAKWATCH_DIR"]], c["volumes"], "dumps need a named volume")
        self.assertTrue(app["read_only"])
        for s in services.values():
            if "build" in s:
                self.assertTrue(os.path.exists(os.path.join(DOCKER, s["build"]["context"],
                                                            s["build"]["dockerfile"])))

    def test_every_variable_named_is_documented(self):
        allowed = documented_variables() | {"LD_PRELOAD"}
        self.assertIn("LEAKWATCH_DIR", allowed)
        named = {}
        if yaml is not None:
            for path in MANIFESTS:
                for d in self._load(path):
                    spec = d.get("spec", {})
                    spec = spec.get("template", {}).get("spec", spec)
                    for ctr in spec.get("initContainers", []) + spec.get("containers", []):
                        for e in ctr.get("env", []):
                            named.setdefault(e["name"], path)
            for s in self._load(COMPOSE)[0]["services"].values():
                env = s.get("environment", {})
                names = env.keys() if isinstance(env, dict) else [e.split("=")[0] for e in env]
                for n in names:
                    named.setdefault(n, COMPOSE)
        else:
            print("note: no yaml module; variables found by pattern only")
        for path in MANIFESTS + [COMPOSE, GUIDE]:
            with open(path) as f:
                for n in re.findall(r"\b(LEAKWATCH_[A-Z_]+|LD_PRELOAD)\b", f.read()):
                    named.setdefault(n, path)
        self.assertIn("LEAKWATCH_DIR", named)
        for n, where in sorted(named.items()):
            self.assertIn(n, allowed, "%s (in %s) is not a documented variable" % (n, where))


class ShimBundle(ContainerTestCase):
    """The Dockerfile's bundling and the init container's copy, run here."""

    def _prefix(self):
        for tool in ("ldd", "patchelf"):
            if not shutil.which(tool):
                reason = "%s is not installed (docker/bundle-shim-libs.sh needs it; Debian package %s)" % (
                    tool, "libc-bin" if tool == "ldd" else tool)
                print("SKIP %s: %s" % (self.id(), reason))
                self.skipTest(reason)
        prefix = os.path.join(self.tmp, "opt", "leakwatch")
        os.makedirs(prefix + "/bin")
        os.makedirs(prefix + "/lib")
        shutil.copy2(lwtest.SHIM, prefix + "/lib/libleakwatch.so")
        shutil.copy2(lwtest.CLI, prefix + "/bin/leakwatch")
        p = subprocess.run(["sh", os.path.join(DOCKER, "bundle-shim-libs.sh"), prefix + "/lib"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        shutil.copy2(os.path.join(DOCKER, "install-shim.sh"), prefix + "/bin/leakwatch-install-shim")
        return prefix

    def test_init_container_copy_then_profile_in_an_image_without_libunwind(self):
        require_unshare(self, PID_NS + MOUNT_NS)
        prefix = self._prefix()
        self.assertEqual(sorted(os.listdir(prefix + "/lib")), ["libleakwatch.so", "liblzma.so.5", "libunwind.so.8"])
        # The init container: copy into the shared volume (by PATH, as the manifests call it).
        shared = os.path.join(self.tmp, "shared", "leakwatch")
        p = subprocess.run(["leakwatch-install-shim", shared], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30, env=lwtest.plain_env({"PATH": prefix + "/bin:" + os.environ["PATH"]}))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("LD_PRELOAD=%s/libleakwatch.so" % shared, p.stdout)
        for name in os.listdir(prefix + "/lib"):
            st = os.stat(os.path.join(shared, name))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o755, name)
        self.assertEqual([n for n in os.listdir(shared) if n.startswith(".")], [], "temp files left behind")
        # Again (a restarted pod): replaced by rename, not rewritten in place.
        before = os.stat(os.path.join(shared, "libleakwatch.so")).st_ino
        subprocess.run(["sh", prefix + "/bin/leakwatch-install-shim", shared], check=True, timeout=30,
                       stdout=subprocess.DEVNULL)
        self.assertNotEqual(os.stat(os.path.join(shared, "libleakwatch.so")).st_ino, before)

        # The application image: no libunwind or liblzma (bind an empty file
        # over the host's), read-only root, run as uid 10001 like the manifest.
        hide = []
        obj = lwtest.SHIM
        for so in ("libunwind.so.8", "liblzma.so.5"):  # the system's copies, as the loader finds them
            out = subprocess.run(["ldd", obj], stdout=subprocess.PIPE, text=True, timeout=30,
                                 env=lwtest.plain_env()).stdout
            found = next((l.split()[2] for l in out.splitlines() if len(l.split()) > 2 and l.split()[0] == so
                          and l.split()[2].startswith("/")), None)
            self.assertIsNotNone(found, "ldd %s does not resolve %s:\n%s" % (obj, so, out))
            hide.append(os.path.realpath(found))
            obj = found
        empty = os.path.join(self.tmp, "empty")
        open(empty, "w").close()
        app_dir = os.path.join(self.tmp, "app")
        os.makedirs(app_dir)
        shutil.copy2(lwtest.program(LEAKER), app_dir)
        dumps = os.path.join(self.tmp, "volume")
        os.makedirs(dumps)
        os.chown(dumps, 10001, 10001)
        for d in (self.tmp, os.path.dirname(shared), shared, app_dir):
            os.chmod(d, 0o755)
        setup = "".join('mount --bind "$CT_EMPTY" %s\n' % shlex.quote(h) for h in hide) + """
mount --bind "$CT_VOLUME" "$CT_VOLUME"
mount -o remount,bind,ro /
"""
        env = {"CT_EMPTY": empty, "CT_VOLUME": dumps}
        prog = os.path.join(app_dir, LEAKER)
        base = ["unshare", *PID_NS, *MOUNT_NS, "sh", "-euc", setup + 'exec "$@"', "container"]
        as_app = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups"] if shutil.which("setpriv") else []

        # Control: the bare shim cannot load there, so the hiding works.
        bare = os.path.join(self.tmp, "bare")
        os.makedirs(bare)
        os.chmod(bare, 0o755)
        shutil.copy2(lwtest.SHIM, bare)
        p = subprocess.run(base + ["env", "LD_PRELOAD=%s/libleakwatch.so" % bare, "LEAKWATCH_DIR=" + dumps, prog,
                                   "0.2", "100000"], env=lwtest.plain_env(env), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, "the shim loaded without its libraries: nothing was hidden (%s)" % hide)
        self.assertIn("error while loading shared libraries", p.stderr)

        p = subprocess.run(base + as_app + ["env", "LD_PRELOAD=%s/libleakwatch.so" % shared, "LEAKWATCH_DIR=" + dumps,
                                            "LEAKWATCH_INTERVAL=0.25", "LEAKWATCH_SAMPLE_BYTES=16384",
                                            "LEAKWATCH_MATCH=" + LEAKER, prog, "2.5", "1000000"],
                           env=lwtest.plain_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "", "the shim must be silent")
        self.assertIn("pid 1 ", p.stdout)
        paths = self.assertAllDumpsValid(dumps, at_least=4)
        if as_app:
            self.assertEqual({os.stat(x).st_uid for x in paths}, {10001})
        info = lwtest.inspect_info(paths[-1])
        self.assertIn(shared + "/libunwind.so.8", info["modules"], "libunwind did not come from the bundle")
        self.assertIn(shared + "/liblzma.so.5", info["modules"], "liblzma did not come from the bundle")
        rep = lwtest.report_json(dumps)
        self.assertLeakGrowing(rep)


if __name__ == "__main__":
    unittest.main()
