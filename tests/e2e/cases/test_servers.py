"""Real servers under load with the shim preloaded into the server (issue 7).

Each test starts a server from its Debian package (on a Unix socket, or
for nginx on a free port of 127.0.0.1; every file in a temp dir), puts it under load with the package's own
load generator, once without the shim and once with it, and asserts:
zero request errors, the same work done, valid dumps from every server
process that lived through the load (Postgres forks a backend per
connection: their dumps are there), and a normal exit. The throughput
ratio (shim / plain) is printed as a figure, never asserted.

  redis-server  redis-benchmark -n 50000 (and a BGSAVE: redis forks)
  nginx         master + 2 workers (gzip on), wrk for 10 s (ab -n if no wrk)
  postgres      initdb as the `postgres` user, pgbench -i, then -c 4 -t 500

These take a few minutes, so they run only when LEAKWATCH_LOAD_TESTS=1
(.ci/load sets it); each skips, saying why, when its packages are missing
(apt-get install redis-server redis-tools nginx wrk apache2-utils
postgresql).
"""
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

import lwtest

ENABLED = os.environ.get("LEAKWATCH_LOAD_TESTS") == "1"
SKIP_WHY = "load tests run from .ci/load (set LEAKWATCH_LOAD_TESTS=1 to run them here)"
INTERVAL = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connectable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_unix(path, timeout, what):
    def up():
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(path)
                return True
        except OSError:
            return False
    lwtest.wait_until(up, timeout, what, poll=0.1)


def children_of(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(st.split("/")[2]))
        except (OSError, IndexError, ValueError):
            pass
    return out


def dump_pids(paths):
    """pid -> dump paths, from the file names (exe.pid.instance.seq.lwdump)."""
    by = {}
    for p in paths:
        parts = os.path.basename(p).split(".")
        by.setdefault(int(parts[-4]), []).append(p)
    return by


def figure(name, plain, shim, unit):
    ratio = shim / plain if plain else float("nan")
    line = "load figure: %-28s plain %10.1f %s   shim %10.1f %s   ratio %.3f" % (name, plain, unit, shim, unit, ratio)
    return record(line, ratio)


def summary(name, ratios):
    ratio = _geomean(ratios)
    return record("load figure: %-28s geometric mean of the ratios %.3f" % (name, ratio), ratio)


def record(line, ratio):
    sys.stderr.write(line + "\n")
    with open(os.environ.get("LEAKWATCH_LOAD_FIGURES", os.devnull), "a") as f:
        f.write(line + "\n")
    return ratio


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    return missing


class ServerCase(lwtest.ShimTestCase):
    def setUp(self):
        if not ENABLED:
            self.skipTest(SKIP_WHY)
        super().setUp()
        os.chmod(self.tmp, 0o755)  # servers drop privileges; they must reach their files

    def shared_dir(self, name, owner=None):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o1777)  # server processes may run as other users
        if owner:
            pw = pwd.getpwnam(owner)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o700)
        return d

    def check_dumps(self, dump_dir, pids, exe_names):
        """Every process in pids wrote dumps, all valid; returns pid -> paths."""
        paths = lwtest.list_dumps(dump_dir)
        self.assertDumpsValid(paths, at_least=1)
        by = dump_pids(paths)
        missing = sorted(set(pids) - set(by))
        self.assertEqual(missing, [], "no dumps from server processes %s (dumps from %s)" % (missing, sorted(by)))
        for pid in pids:
            info = lwtest.inspect_info(sorted(by[pid])[-1])
            self.assertIn(os.path.basename(info["exe"]), exe_names)
        rep = lwtest.report_json(dump_dir)
        self.assertGreaterEqual(len(rep["processes"]), len(pids))
        return by


@unittest.skipIf(need("redis-server", "redis-benchmark", "redis-cli"),
                 "redis not installed (apt-get install redis-server redis-tools)")
class Redis(ServerCase):
    TESTS = "set,get,incr,lpush,lpop,sadd,hset,mset"

    # A Unix socket in the test's own directory: no port to find free and
    # have taken by another process before the server binds it.
    def cli(self, sock, *args):
        p = subprocess.run(["redis-cli", "-s", sock, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        return p.stdout.strip()

    def serve_and_load(self, preload, dump_dir=None):
        name = "shim" if preload else "plain"
        work = self.shared_dir("redis-%s" % name)
        sock = os.path.join(work, "redis.sock")
        cmd = ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "777", "--dir", work,
               "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
               "--loglevel", "warning"]
        b = self.start(cmd, preload=preload, dump_dir=dump_dir, name="redis-%s" % name, interval=INTERVAL)
        wait_unix(sock, 60, "redis on %s" % sock)
        rps = {}
        for _ in range(2):  # the better of two rounds: the first one warms up
            bench = subprocess.run(["redis-benchmark", "-s", sock, "-n", "50000", "-c", "20",
                                    "-r", "100000", "-q", "-t", self.TESTS], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=600)
            self.assertEqual(bench.returncode, 0, bench.stdout)
            out = bench.stdout.replace("\r", "\n")
            self.assertNotRegex(out, r"(?i)\berr(or)?\b", "redis-benchmark saw errors:\n" + out)
            got = {m.group(1): float(m.group(2))
                   for m in re.finditer(r"^(\w+)[^:\n]*: ([\d.]+) requests per second", out, re.M)}
            self.assertEqual(len(got), len(self.TESTS.split(",")), out)
            for k, v in got.items():
                rps[k] = max(rps.get(k, 0), v)
        # A fork: BGSAVE writes the dataset from a child process.
        self.assertIn("Background saving started", self.cli(sock, "bgsave"))
        lwtest.wait_until(lambda: "rdb_bgsave_in_progress:0" in self.cli(sock, "info", "persistence"), 120,
                          "BGSAVE to finish")
        self.assertIn("rdb_last_bgsave_status:ok", self.cli(sock, "info", "persistence"))
        keys = int(self.cli(sock, "dbsize"))
        self.assertGreater(keys, 0)
        pid = b.pid
        self.cli(sock, "shutdown", "nosave")
        self.assertEqual(b.finish(timeout=120), 0, b.stderr()[-2000:])
        return rps, pid

    def test_redis_benchmark(self):
        plain, _ = self.serve_and_load(False)
        d = self.shared_dir("dumps-redis")
        shim, pid = self.serve_and_load(True, d)
        ratios = [figure("redis %s" % k, plain[k], shim[k], "req/s") for k in sorted(plain)]
        summary("redis", ratios)
        # Debian's redis-server is a link to redis-check-rdb (one binary).
        by = self.check_dumps(d, [pid], ("redis-server", "redis-check-rdb"))
        self.assertTrue(lwtest.inspect_info(sorted(by[pid])[-1])["final"], "redis-server wrote no final dump")


def _geomean(xs):
    import math
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


@unittest.skipIf(need("nginx") or need("wrk") and need("ab"),
                 "nginx or a load generator missing (apt-get install nginx wrk apache2-utils)")
class Nginx(ServerCase):
    def config(self, root, port):
        for sub in ("www", "logs", "tmp"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        with open(os.path.join(root, "www", "index.html"), "w") as f:
            f.write("<html><body>%s</body></html>\n" % ("hello leakwatch " * 4))
        with open(os.path.join(root, "www", "big.html"), "w") as f:
            f.write("".join("<p>line %d of a compressible page</p>\n" % i for i in range(3000)))
        conf = os.path.join(root, "nginx.conf")
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write("""
%(user)s
daemon off;
master_process on;
worker_processes 2;
pid %(r)s/logs/nginx.pid;
error_log %(r)s/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %(r)s/tmp/body;
  proxy_temp_path %(r)s/tmp/proxy;
  fastcgi_temp_path %(r)s/tmp/fastcgi;
  uwsgi_temp_path %(r)s/tmp/uwsgi;
  scgi_temp_path %(r)s/tmp/scgi;
  gzip on;
  gzip_types text/html;
  gzip_min_length 100;
  server {
    listen 127.0.0.1:%(port)d;
    root %(r)s/www;
    location = /dyn { return 200 "dynamic $request_id\\n"; }
  }
}
""" % {"r": root, "port": port, "user": user})
        for d in (root, os.path.join(root, "www")):
            os.chmod(d, 0o755)
        return conf

    def load(self, port):
        urls = ["/index.html", "/big.html", "/dyn"]
        results = {}
        for url in urls:
            full = "http://127.0.0.1:%d%s" % (port, url)
            if shutil.which("wrk"):
                p = subprocess.run(["wrk", "-t2", "-c20", "-d8s", "-H", "Accept-Encoding: gzip", full],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stdout)
                self.assertNotIn("Socket errors", p.stdout, p.stdout)
                self.assertNotIn("Non-2xx", p.stdout, p.stdout)
                m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
            else:
                p = subprocess.run(["ab", "-q", "-n", "20000", "-c", "20", "-H", "Accept-Encoding: gzip", full],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
                self.assertEqual(p.returncode, 0, p.stdout)
                self.assertRegex(p.stdout, r"Failed requests:\s+0\b")
                self.assertNotRegex(p.stdout, r"Non-2xx responses")
                m = re.search(r"Requests per second:\s+([\d.]+)", p.stdout)
            self.assertTrue(m, p.stdout)
            results[url] = float(m.group(1))
        return results

    def serve_and_load(self, preload, dump_dir=None):
        root = os.path.join(self.tmp, "nginx-%s" % ("shim" if preload else "plain"))
        # The load generators speak TCP only. A port found free can be taken
        # by another process before nginx binds it: nginx then exits saying
        # so, and another port is tried; any other exit is a failure.
        for attempt in range(5):
            port = free_port()
            conf = self.config(root, port)
            log = os.path.join(root, "logs", "error.log")
            open(log, "w").close()
            b = self.start(["nginx", "-p", root, "-c", conf], preload=preload, dump_dir=dump_dir,
                           name="nginx-%d" % port, interval=INTERVAL)

            def ready():
                # The master binds before it forks its workers: with both
                # workers up, the listener on the port is this nginx.
                if b.proc.poll() is not None:
                    return "exited"
                kids = children_of(b.pid)
                return kids if len(kids) == 2 and connectable(port) else None
            workers = lwtest.wait_until(ready, 60, "nginx and its 2 workers on port %d" % port)
            if workers != "exited":
                break
            b.finish(timeout=60)
            with open(log) as f:
                self.assertIn("Address already in use", f.read() + b.stderr().decode(), "nginx exited at start")
        else:
            self.fail("nginx found no free port in 5 attempts")
        rps = self.load(port)
        self.assertEqual(sorted(children_of(b.pid)), sorted(workers), "a worker died during the load")
        os.kill(b.pid, signal.SIGQUIT)  # graceful: workers finish and exit normally
        self.assertEqual(b.finish(timeout=120), 0, b.stderr()[-2000:])
        with open(os.path.join(root, "logs", "error.log")) as f:
            errors = [l for l in f if "[alert]" in l or "[emerg]" in l or "[crit]" in l]
        self.assertEqual(errors, [], "nginx error.log")
        return rps, [b.pid] + workers

    def test_nginx_under_load(self):
        plain, _ = self.serve_and_load(False)
        d = self.shared_dir("dumps-nginx")
        shim, pids = self.serve_and_load(True, d)
        ratios = [figure("nginx %s" % u, plain[u], shim[u], "req/s") for u in sorted(plain)]
        summary("nginx", ratios)
        by = self.check_dumps(d, pids, ("nginx",))
        for pid in pids:
            self.assertTrue(lwtest.inspect_info(sorted(by[pid])[-1])["final"], "nginx %d wrote no final dump" % pid)


def pg_bin(name):
    """The newest installed PostgreSQL's NAME (Debian keeps them in /usr/lib/postgresql/VERSION/bin)."""
    def version(path):
        v = path.split("/")[-3]
        return [int(x) if x.isdigit() else 0 for x in v.split(".")]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/%s" % name), key=version)
    return found[-1] if found else shutil.which(name)


def _has_postgres_user():
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


@unittest.skipIf(not (pg_bin("initdb") and pg_bin("pg_ctl") and pg_bin("pgbench")),
                 "PostgreSQL not installed (apt-get install postgresql)")
@unittest.skipIf(os.geteuid() != 0 or not _has_postgres_user() or not shutil.which("runuser"),
                 "needs root (to run the server as the `postgres` user with runuser)")
class Postgres(ServerCase):
    def setUp(self):
        super().setUp()
        self.pgroot = self.shared_dir("pg", owner="postgres")
        self.data = os.path.join(self.pgroot, "data")
        self.sock = self.pgroot
        self.as_pg([pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                   timeout=300)

    def as_pg(self, cmd, env=None, timeout=120, check=True):
        p = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], env=env or lwtest.plain_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                           cwd=self.pgroot)
        if check:
            self.assertEqual(p.returncode, 0, "%s:\n%s" % (" ".join(cmd), p.stdout))
        return p

    def pgbench(self, port, *args, timeout=600):
        cmd = [pg_bin("pgbench"), "-h", self.sock, "-p", str(port), "-U", "postgres", *args, "postgres"]
        p = subprocess.run(cmd, env=lwtest.plain_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        self.assertEqual(p.returncode, 0, p.stdout)
        return p.stdout

    def serve_and_load(self, preload, dump_dir=None):
        # Unix sockets only, in the test's own directory: no TCP port to find
        # free and have taken before the server binds it.
        port = 5432
        env = lwtest.shim_env(dump_dir, interval=INTERVAL, match="postgres") if preload else lwtest.plain_env()
        log = os.path.join(self.pgroot, "log-%s" % ("shim" if preload else "plain"))
        opts = "-k %s -p %d -c listen_addresses='' -c fsync=off -c max_connections=20" % (self.sock, port)
        self.as_pg([pg_bin("pg_ctl"), "-D", self.data, "-l", log, "-o", opts, "-w", "-t", "120", "start"],
                   env=env, timeout=180)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        try:
            self.pgbench(port, "-i", "-s", "2", "-q")
            before = set(children_of(postmaster))
            # Sample the backends while the benchmark runs.
            p = subprocess.Popen([pg_bin("pgbench"), "-h", self.sock, "-p", str(port), "-U", "postgres", "-c", "4",
                                  "-j", "2", "-t", "500", "postgres"], env=lwtest.plain_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            backends = set()
            while p.poll() is None:
                backends.update(set(children_of(postmaster)) - before)
                time.sleep(0.05)
            out = p.communicate(timeout=600)[0]
            self.assertEqual(p.returncode, 0, out)
        finally:
            self.as_pg([pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t", "120", "stop"], timeout=180)
        self.assertRegex(out, r"number of transactions actually processed: 2000/2000")
        m = re.search(r"number of failed transactions: (\d+)", out)
        self.assertTrue(m is None or m.group(1) == "0", out)
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
        with open(log) as f:
            bad = [l for l in f if re.search(r"\b(PANIC|FATAL|server process .* was terminated)", l)]
        self.assertEqual(bad, [], "postgres log")
        return tps, postmaster, before, backends

    def test_pgbench(self):
        plain1, _, _, _ = self.serve_and_load(False)
        d = self.shared_dir("dumps-pg", owner="postgres")
        shim, postmaster, aux, backends = self.serve_and_load(True, d)
        plain2, _, _, _ = self.serve_and_load(False)  # before and after: the first run is colder
        figure("postgres pgbench -c4 -t500", (plain1 + plain2) / 2, shim, "tps")
        by = dump_pids(lwtest.list_dumps(d))
        sys.stderr.write("postgres: postmaster %d, auxiliary processes %s, backends during the benchmark %s; "
                         "dumps from %s\n" % (postmaster, sorted(aux), sorted(backends), sorted(by)))
        # The postmaster, its long-lived auxiliary processes (checkpointer,
        # writers, launchers) and the benchmark's backends all wrote dumps.
        self.check_dumps(d, [postmaster] + sorted(aux) + sorted(backends), ("postgres",))
        self.assertGreaterEqual(len(backends), 4)
        self.assertTrue(lwtest.inspect_info(sorted(by[postmaster])[-1])["final"], "no final dump from the postmaster")


if __name__ == "__main__":
    unittest.main()
