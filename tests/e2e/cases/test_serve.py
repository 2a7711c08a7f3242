"""`leakwatch serve`: live verdicts for monitoring. A leaking program
writes dumps; the server watches the directory and serves Prometheus
metrics; a real Prometheus server (Debian's `prometheus`) scrapes it on
127.0.0.1 and an alerting rule on a growing site fires. The server
survives corrupt and half-written files, does no work while nothing
changes, and ends promptly on SIGTERM."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

import lwtest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def get(port, path, timeout=10):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def metric(text, name, labels=""):
    """The value of the first sample of `name` whose labels contain `labels`."""
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            rest = line[len(name):]
            if rest[:1] in (" ", "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve(lwtest.ShimTestCase):
    def start_server(self, *extra):
        srv = self.start([lwtest.CLI, "serve", self.dir, "--listen", "127.0.0.1:0", "--refresh", "0.3", *extra],
                         preload=False, env=lwtest.plain_env(), name="serve")
        line = lwtest.wait_until(lambda: re.search(rb"on http://127\.0\.0\.1:(\d+)/", srv.stderr()), 30,
                                 "the server to listen")
        srv.port = int(line.group(1))
        return srv

    def metrics(self, srv):
        status, body = get(srv.port, "/metrics")
        self.assertEqual(status, 200)
        return body

    def stop_server(self, srv):
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        self.assertEqual(srv.wait_exit(30), 0, srv.stderr())
        return time.monotonic() - t0

    def test_prometheus_scrapes_and_the_alert_fires(self):
        if not shutil.which("prometheus"):
            self.skipTest("prometheus is not installed (Debian's `prometheus` package)")
        os.makedirs(self.dir)
        srv = self.start_server()
        # Before any dump: up, saying there is no report yet.
        m = self.metrics(srv)
        self.assertEqual(metric(m, "leakwatch_serve_report_ok"), 0, m)

        # ~200 KB/s until stdin closes.
        app = self.start([lwtest.program("steady_leak"), "200000", "0"], interval=0.2, sample_bytes=16384, name="app")
        lwtest.wait_until(lambda: b"ready\n" in app.stdout(), 30, "steady_leak to start")

        # Prometheus with the alert rule shipped in docker/kubernetes.
        prom_dir = os.path.join(self.tmp, "prom")
        os.makedirs(prom_dir)
        rules = os.path.join(prom_dir, "rules.yml")
        rule = open(os.path.join(ROOT, "docker", "prometheus", "leakwatch-rules.yml")).read()
        # The shipped rule waits 10m before firing; the test cannot.
        rule = re.sub(r"for: \S+", "for: 0s", rule)
        open(rules, "w").write(rule)
        check = subprocess.run(["promtool", "check", "rules", rules], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout)
        cfg = os.path.join(prom_dir, "prometheus.yml")
        open(cfg, "w").write(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files: [%s]\n"
            "scrape_configs:\n  - job_name: leakwatch\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
            % (json.dumps(rules), srv.port))
        # A port found free can be taken by a test beside this one before
        # Prometheus binds it: then it exits, and another port is tried.
        for attempt in range(5):
            prom_port = free_port()
            prom = self.start(["prometheus", "--config.file=" + cfg,
                               "--storage.tsdb.path=" + os.path.join(prom_dir, "data"),
                               "--web.listen-address=127.0.0.1:%d" % prom_port], preload=False,
                              env=lwtest.plain_env(), name="prometheus%d" % attempt)

            def ready():
                if prom.proc.poll() is not None:
                    return "exited"
                try:
                    return "ready" if get(prom_port, "/-/ready", timeout=5)[0] == 200 else None
                except OSError:
                    return None
            if lwtest.wait_until(ready, 60, "Prometheus to start") == "ready":
                break
            self.assertIn(b"address already in use", prom.stderr(), "Prometheus exited at start")
        try:
            def firing():
                try:
                    _, body = get(prom_port, "/api/v1/alerts", timeout=5)
                except OSError:
                    return None
                alerts = json.loads(body)["data"]["alerts"]
                return [a for a in alerts if a["state"] == "firing" and a["labels"].get("alertname") == "LeakwatchSiteGrowing"]
            alerts = app.wait_ticking(firing, 120, "Prometheus to fire LeakwatchSiteGrowing")
            self.assertIn("steady_leak_site", alerts[0]["labels"]["function"], alerts)
            # Prometheus stored the rate the server saw (a query through its API).
            _, body = get(prom_port, "/api/v1/query?query=" + urllib.parse.quote(
                'max(leakwatch_site_growth_bytes_per_second{function=~".*steady_leak_site.*"})'))
            rate = float(json.loads(body)["data"]["result"][0]["value"][1])
            self.assertGreater(rate, 200000 * 0.5, body)
            self.assertLess(rate, 200000 * 1.5, body)
        finally:
            prom.kill(signal.SIGTERM)
        # The site's series carry no verdict or rank label (a verdict flip
        # must not start a new series).
        m = self.metrics(srv)
        for line in m.splitlines():
            if line.startswith("leakwatch_site_"):
                self.assertNotRegex(line, r"verdict=|rank=", line)
        # The HTML report and the JSON are served too.
        status, html = get(srv.port, "/")
        self.assertEqual(status, 200)
        self.assertIn("steady_leak_site", html)
        status, body = get(srv.port, "/report.json")
        self.assertTrue(any(s["verdict"] == "growing" for s in json.loads(body)["sites"]))
        app.finish()
        self.assertLess(self.stop_server(srv), 10)

    def test_bad_files_never_take_it_down_and_idle_costs_nothing(self):
        r = lwtest.run([lwtest.program("three_leaks"), "2"], self.dir, interval=0.2, sample_bytes=8192)
        self.assertEqual(r.returncode, 0, r.stderr)
        srv = self.start_server()
        lwtest.wait_until(lambda: metric(self.metrics(srv), "leakwatch_serve_report_ok") == 1, 60, "a report")
        good = self.metrics(srv)
        growing = metric(good, "leakwatch_serve_growing_sites")
        self.assertGreaterEqual(growing, 3, good)

        # Nothing changes: no rebuild, (almost) no CPU, over many refresh periods.
        rebuilds = metric(good, "leakwatch_serve_rebuilds_total")
        cpu = metric(good, "leakwatch_serve_cpu_seconds_total")
        time.sleep(3)  # the thing measured is idleness over time itself, not a condition to wait for
        idle = self.metrics(srv)
        self.assertEqual(metric(idle, "leakwatch_serve_rebuilds_total"), rebuilds)
        self.assertLess(metric(idle, "leakwatch_serve_cpu_seconds_total") - cpu, 0.3)

        # A half-written dump (as if the writer were killed mid-file), a
        # truncated one and a foreign file: warnings, and the same verdicts.
        data = open(r.dumps()[-1], "rb").read()
        for name, content in {"half": data[: len(data) // 3], "foreign": b"GIF89a" + b"\0" * 64, "empty": b""}.items():
            with open(os.path.join(self.dir, "bad-%s.lwdump" % name), "wb") as f:
                f.write(content)
        # A scan may land between our writes: wait for the one that saw all three.
        lwtest.wait_until(lambda: metric(self.metrics(srv), "leakwatch_serve_warnings") == 3, 30,
                          "a rebuild that sees the three bad files")
        after = self.metrics(srv)
        self.assertEqual(metric(after, "leakwatch_serve_report_ok"), 1, after)
        self.assertEqual(metric(after, "leakwatch_serve_warnings"), 3, after)
        self.assertEqual(metric(after, "leakwatch_serve_growing_sites"), growing, after)
        self.assertEqual(get(srv.port, "/healthz")[1], "ok\n")

        # The directory vanishes (a volume unmounted): no report, still up;
        # it comes back: the report too.
        moved = self.dir + ".away"
        os.rename(self.dir, moved)
        lwtest.wait_until(lambda: metric(self.metrics(srv), "leakwatch_serve_report_ok") == 0, 30, "no report")
        os.rename(moved, self.dir)
        lwtest.wait_until(lambda: metric(self.metrics(srv), "leakwatch_serve_report_ok") == 1, 30, "the report back")
        self.assertLess(self.stop_server(srv), 10)

    def test_shipped_rules_and_sidecar_manifest(self):
        # The PrometheusRule holds the same groups as the rules file, and
        # the Kubernetes sidecar's command line is one `serve` accepts.
        try:
            import yaml
        except ImportError:
            self.skipTest("python3-yaml is not installed (.ci/packages.txt installs it)")
        rules = yaml.safe_load(open(os.path.join(ROOT, "docker", "prometheus", "leakwatch-rules.yml")))
        crd = yaml.safe_load(open(os.path.join(ROOT, "docker", "kubernetes", "leakwatch-alerts.yaml")))
        self.assertEqual(crd["kind"], "PrometheusRule")
        self.assertEqual(crd["spec"], rules)
        docs = list(yaml.safe_load_all(open(os.path.join(ROOT, "docker", "kubernetes", "leaky-app.yaml"))))
        deploy = [d for d in docs if d and d["kind"] == "Deployment"][0]
        pod = deploy["spec"]["template"]
        sidecar = [c for c in pod["spec"]["containers"] if c["name"] == "leakwatch-serve"][0]
        port = sidecar["ports"][0]["containerPort"]
        self.assertEqual(pod["metadata"]["annotations"]["prometheus.io/port"], str(port))
        self.assertTrue(any(m["mountPath"] == "/dumps" and m.get("readOnly") for m in sidecar["volumeMounts"]))
        service = [d for d in docs if d and d["kind"] == "Service"][0]
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], sidecar["ports"][0]["name"])
        argv = sidecar["command"]
        self.assertEqual(argv[:2], ["leakwatch", "serve"])
        os.makedirs(self.dir)
        args = [self.dir if a == "/dumps" else "127.0.0.1:0" if a.startswith("0.0.0.0:") else a for a in argv[2:]]
        srv = self.start([lwtest.CLI, "serve", *args], preload=False, env=lwtest.plain_env(), name="sidecar")
        lwtest.wait_until(lambda: b"on http://127.0.0.1:" in srv.stderr(), 30, "the sidecar's command to serve")
        self.assertLess(self.stop_server(srv), 10)

    def test_thousands_of_dumps_memory_stays_bounded(self):
        # 8 processes x 250 dumps. Rebuilding again and again over the same
        # 2000 dumps must not grow the server: its peak RSS after 6
        # rebuilds stays within 25% of its peak after the first.
        procs = [self.start([lwtest.program("steady_leak"), "50000", "0"], interval=0.05, sample_bytes=16384,
                            max_dumps=100000, name="p%d" % i) for i in range(8)]
        try:
            for p in procs:
                lwtest.wait_until(lambda: b"ready\n" in p.stdout(), 30, "steady_leak to start")
            procs[0].wait_ticking(lambda: len(lwtest.list_dumps(self.dir)) >= 2000, 240, "2000 dumps")
        finally:
            for p in procs:
                p.finish()
        files = len(lwtest.list_dumps(self.dir))
        srv = self.start_server()

        def rebuilt(n):
            return lambda: (metric(self.metrics(srv), "leakwatch_serve_rebuilds_total") or 0) >= n
        lwtest.wait_until(rebuilt(1), 300, "the first report")
        m = self.metrics(srv)
        self.assertEqual(metric(m, "leakwatch_serve_dumps_read"), files, m)
        self.assertGreaterEqual(metric(m, "leakwatch_serve_growing_sites"), 1, m)

        def hwm():
            for line in open("/proc/%d/status" % srv.pid):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        first = hwm()
        first_rebuild = metric(m, "leakwatch_serve_rebuild_seconds")
        for i in range(2, 8):
            os.utime(lwtest.list_dumps(self.dir)[0])  # a change: one more rebuild
            lwtest.wait_until(rebuilt(i), 300, "rebuild %d" % i)
        last = hwm()
        print("serve: %d dumps, first rebuild %.2f s, peak RSS %.1f MiB after 1 rebuild, %.1f MiB after 7"
              % (files, first_rebuild, first / 2**20, last / 2**20))
        self.assertLess(last, first * 1.25 + (8 << 20), "the server grows with every rebuild")
        self.assertLess(self.stop_server(srv), 30)


if __name__ == "__main__":
    unittest.main()
