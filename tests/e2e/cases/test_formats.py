"""The ecosystem's formats (`report --format prom|pprof|html`), each checked
by an independent reader against `--format json` of the same dumps:
- prom: `promtool check metrics` (Prometheus' own linter) accepts it; the
  top-N series plus the "other" series add up to the JSON's live bytes.
- pprof: `protoc --decode` with our profile.proto decodes the gunzipped
  file; sums, site count and function names match the JSON; the npm
  `pprof-format` reader decodes it too when it is installed.
- html: headless Chromium loads the page with no console errors, the DOM
  has the table rows and the chart's paths, and a screenshot shows them.

One real run of three_leaks (three leaks among decoys, 4 s, a dump every
0.25 s) is shared by all the checks. External tools that are missing make
their checks skip with the reason (CI installs them: .ci/packages.txt).
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import lwtest

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "..", "reporter", "render", "profile.proto"))
_tmp = None
_dumps = None
_report = None


def setUpModule():
    global _tmp, _dumps, _report
    _tmp = tempfile.mkdtemp(prefix="lwformats.")
    _dumps = os.path.join(_tmp, "dumps")
    r = lwtest.run([lwtest.program("three_leaks"), "4"], _dumps, timeout=120, sample_bytes=8192, interval=0.25)
    if r.returncode != 0:
        raise AssertionError("three_leaks failed: %s" % r.stderr)
    _report = lwtest.report_json(_dumps)


def tearDownModule():
    shutil.rmtree(_tmp, ignore_errors=True)


def cli(*args, timeout=120, text=True):
    return subprocess.run([lwtest.CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text,
                          timeout=timeout)


PROM_LINE = re.compile(r'^([a-z_]+)\{(.*)\} (\S+)$')
PROM_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


class Prom(unittest.TestCase):
    TOP = 3

    def setUp(self):
        p = cli("report", _dumps, "--format", "prom", "--top", str(self.TOP))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.text = p.stdout

    def series(self, name):
        out = []
        for line in self.text.splitlines():
            m = PROM_LINE.match(line)
            if m and m.group(1) == name:
                out.append((dict(PROM_LABEL.findall(m.group(2))), float(m.group(3))))
        return out

    def test_promtool_accepts_it(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed (Debian package prometheus)")
        p = subprocess.run([promtool, "check", "metrics"], input=self.text, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(p.stdout.strip(), "", "promtool lint findings: " + p.stdout)

    def test_help_and_type_once_per_family(self):
        helps = re.findall(r"^# HELP (\S+) ", self.text, re.M)
        types = re.findall(r"^# TYPE (\S+) gauge$", self.text, re.M)
        self.assertEqual(helps, types)
        self.assertEqual(len(helps), len(set(helps)))
        self.assertIn("leakwatch_site_live_bytes", helps)
        self.assertIn("leakwatch_site_growth_bytes_per_second", helps)

    def test_numbers_match_json(self):
        sites = _report["sites"]
        self.assertGreater(len(sites), self.TOP, "need more sites than --top for an 'other' series")
        live = self.series("leakwatch_site_live_bytes")
        growth = self.series("leakwatch_site_growth_bytes_per_second")
        # Bounded cardinality: top N plus one "other".
        self.assertEqual(len(live), self.TOP + 1)
        self.assertEqual([l["site"] == "other" for l, _ in live], [False, False, False, True])
        ranks = self.series("leakwatch_site_rank")
        self.assertEqual([v for _, v in ranks], [1, 2, 3])
        flags = self.series("leakwatch_site_growing")
        total = sum(v for _, v in live)
        self.assertAlmostEqual(total, sum(s["live_bytes"] for s in sites), delta=1 + 1e-6 * total)
        for i, (labels, value) in enumerate(live[:self.TOP]):
            s = sites[i]
            self.assertAlmostEqual(value, s["live_bytes"], delta=1e-6 * s["live_bytes"] + 1)
            self.assertAlmostEqual(growth[i][1], s["growth_bytes_per_s"], delta=1e-6 * abs(s["growth_bytes_per_s"]) + 1e-6)
            self.assertNotIn("verdict", labels)  # a value, so a flip keeps the series
            self.assertEqual(flags[i][1], 1 if s["verdict"] == "growing" else 0)
            self.assertIn(labels["function"], {f["function"] for f in s["frames"]})
            self.assertRegex(labels["site"], r"^[0-9a-f]{16}$")
            self.assertEqual(labels["program"], "three_leaks")
        functions = {l["function"] for l, _ in live}
        self.assertTrue(any("leak_fast" in f for f in functions), functions)
        growing = self.series("leakwatch_growing_sites")
        self.assertEqual(growing[0][1], sum(1 for s in sites if s["verdict"] == "growing"))

    def test_site_ids_are_stable(self):
        again = cli("report", _dumps, "--format", "prom", "--top", "20").stdout
        ids = {m.group(1): m.group(2) for m in re.finditer(r'site="([0-9a-f]{16})",function="([^"]*)"', self.text)}
        ids2 = {m.group(1): m.group(2) for m in re.finditer(r'site="([0-9a-f]{16})",function="([^"]*)"', again)}
        self.assertTrue(ids)
        for k, v in ids.items():
            self.assertEqual(ids2.get(k), v)


def parse_textproto(text):
    """protoc --decode output -> nested dicts of lists (every field a list)."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}:]|[^\s{}:"]+', text)
    root, stack, key = {}, [], None
    cur = root
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "}":
            cur = stack.pop()
        elif i + 1 < len(tokens) and tokens[i + 1] == "{":
            child = {}
            cur.setdefault(t, []).append(child)
            stack.append(cur)
            cur = child
            i += 1
        elif i + 1 < len(tokens) and tokens[i + 1] == ":":
            v = tokens[i + 2]
            if v.startswith('"'):
                v = v[1:-1].encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
            elif v in ("true", "false"):
                v = v == "true"
            else:
                v = int(v)
            cur.setdefault(t, []).append(v)
            i += 2
        else:
            raise ValueError("unexpected token %r" % t)
        i += 1
    return root


def one(msg, field, default=0):
    return msg.get(field, [default])[0]


class Pprof(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.path = os.path.join(_tmp, "profile.pb.gz")
        p = cli("report", _dumps, "--format", "pprof", "--out", cls.path)
        if p.returncode != 0:
            raise AssertionError(p.stderr)
        with open(cls.path, "rb") as f:
            cls.raw = gzip.decompress(f.read())

    def decoded(self):
        protoc = shutil.which("protoc")
        if not protoc:
            self.skipTest("protoc not installed (Debian package protobuf-compiler)")
        p = subprocess.run([protoc, "--decode=perftools.profiles.Profile", "-I", os.path.dirname(PROTO), PROTO],
                           input=self.raw, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return parse_textproto(p.stdout.decode())

    def test_is_gzip(self):
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(2), b"\x1f\x8b")

    def test_protoc_decodes_it_and_numbers_match_json(self):
        prof = self.decoded()
        st = prof["string_table"]
        self.assertEqual(st[0], "")
        types = [(st[one(t, "type")], st[one(t, "unit")]) for t in prof["sample_type"]]
        self.assertEqual(types, [("inuse_space", "bytes"), ("inuse_objects", "count"), ("growth_space", "bytes"),
                                 ("alloc_space", "bytes")])
        self.assertEqual(st[one(prof, "default_sample_type")], "growth_space")
        self.assertEqual(st[one(one(prof, "period_type", {}), "unit")], "bytes")
        self.assertEqual(one(prof, "period"), 8192)
        sites = _report["sites"]
        samples = prof["sample"]
        self.assertEqual(len(samples), len(sites))
        total = sum(one(s, "value") for s in samples)
        self.assertAlmostEqual(total, sum(s["live_bytes"] for s in sites), delta=len(sites))
        self.assertAlmostEqual(sum(s["value"][1] for s in samples), sum(s["live_count"] for s in sites),
                               delta=len(sites))
        self.assertAlmostEqual(sum(s["value"][3] for s in samples), sum(s["alloc_bytes"] for s in sites),
                               delta=len(sites))
        functions = {f["id"][0]: st[one(f, "name")] for f in prof["function"]}
        locations = {l["id"][0]: l for l in prof["location"]}
        mappings = {m["id"][0]: m for m in prof["mapping"]}
        self.assertEqual(set(functions.values()), lwtest.site_functions(_report))
        for smp, site in zip(samples, sites):
            # Same site, same order: every frame, leaf first, inlined ones as
            # extra lines of the location of the frame they are inlined into.
            names = [functions[ln["function_id"][0]] for lid in smp["location_id"] for ln in locations[lid]["line"]]
            self.assertEqual(names, [f["function"] for f in site["frames"]])
            self.assertEqual(len(smp["location_id"]), sum(1 for f in site["frames"][:-1] if not f["inlined"]) + 1)
            self.assertAlmostEqual(smp["value"][0], site["live_bytes"], delta=1)
            grew = max(0.0, sum(ps["points"][-1][1] - ps["points"][0][1] for ps in site["series"] if ps["points"]))
            self.assertAlmostEqual(smp["value"][2], grew, delta=1 + 1e-6 * grew)
            labels = {st[one(l, "key")]: (st[one(l, "str")] if "str" in l else one(l, "num")) for l in smp["label"]}
            self.assertEqual(labels["verdict"], site["verdict"])
            for lid in smp["location_id"]:
                mid = one(locations[lid], "mapping_id")
                if mid:
                    self.assertIn(mid, mappings)
        # The leaks are there by name, and growth puts them ahead of the decoys.
        leaf = lambda smp: functions[locations[smp["location_id"][0]]["line"][0]["function_id"][0]]
        grown = {leaf(s): s["value"][2] for s in samples}
        for fn in ("leak_fast", "leak_medium", "leak_slow"):
            name = next(n for n in grown if n.endswith(fn))
            self.assertGreater(grown[name], 100000, fn)
        # An inlined frame shares a location with its caller.
        self.assertTrue(any(len(l["line"]) > 1 for l in locations.values()), "no location with inlined lines")
        # Mappings name the module and carry its build-id.
        exe = lwtest.program("three_leaks")
        m = [m for m in mappings.values() if st[one(m, "filename")] == exe]
        self.assertEqual(len(m), 1, [st[one(x, "filename")] for x in mappings.values()])
        build_id = st[one(m[0], "build_id")]
        notes = subprocess.run(["readelf", "-n", exe], stdout=subprocess.PIPE, text=True, timeout=60).stdout
        self.assertIn("Build ID: " + build_id, notes)

    def test_npm_pprof_format_reads_it(self):
        node = shutil.which("node")
        if not node:
            self.skipTest("node not installed")
        env = dict(os.environ)
        root = subprocess.run(["npm", "root", "-g"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              timeout=60).stdout.strip() if shutil.which("npm") else ""
        env["NODE_PATH"] = os.pathsep.join(x for x in (env.get("NODE_PATH"), root) if x)
        script = r"""
const { Profile } = require('pprof-format');
const p = Profile.decode(require('zlib').gunzipSync(require('fs').readFileSync(process.argv[1])));
const st = p.stringTable.strings;
const fn = new Map(p.function.map(f => [String(f.id), st[Number(f.name)]]));
const loc = new Map(p.location.map(l => [String(l.id), l]));
console.log(JSON.stringify({
  first: st[0], types: p.sampleType.map(t => st[Number(t.type)]),
  live: p.sample.reduce((a, s) => a + Number(s.value[0]), 0), samples: p.sample.length,
  leaves: p.sample.map(s => fn.get(String(loc.get(String(s.locationId[0])).line[0].functionId)))}));
"""
        have = subprocess.run([node, "-e", "require.resolve('pprof-format')"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60)
        if have.returncode != 0:
            self.skipTest("npm package pprof-format not installed (npm install -g pprof-format)")
        p = subprocess.run([node, "-e", script, self.path], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        sites = _report["sites"]
        self.assertEqual(got["first"], "")
        self.assertEqual(got["types"][0], "inuse_space")
        self.assertEqual(got["samples"], len(sites))
        self.assertAlmostEqual(got["live"], sum(s["live_bytes"] for s in sites), delta=len(sites))
        self.assertEqual(got["leaves"], [s["frames"][0]["function"] for s in sites])


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
PALETTE = [(0xd6, 0x27, 0x28), (0x1f, 0x77, 0xb4), (0x2c, 0xa0, 0x2c), (0xff, 0x7f, 0x0e)]


def read_png(path):
    """A PNG (8-bit RGB or RGBA, not interlaced, as Chromium writes) ->
    (width, height, rows of (r, g, b) tuples), in pure Python."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


class Html(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.path = os.path.join(_tmp, "report.html")
        p = cli("report", _dumps, "--format", "html", "--out", cls.path)
        if p.returncode != 0:
            raise AssertionError(p.stderr)
        with open(cls.path, encoding="utf-8") as f:
            cls.page = f.read()

    def chromium(self, *args):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            self.skipTest("chromium not installed (Debian package chromium)")
        profile = tempfile.mkdtemp(prefix="lwchromium.", dir=_tmp)
        p = subprocess.run([exe, *CHROMIUM_FLAGS, "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
                            *args, "file://" + self.path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-2000:])
        console = [l for l in p.stderr.decode(errors="replace").splitlines() if ":CONSOLE" in l]
        self.assertEqual(console, [], "the page wrote to the console (errors?)")
        return p.stdout.decode(errors="replace")

    def test_self_contained(self):
        self.assertTrue(self.page.startswith("<!DOCTYPE html>"))
        for needle in ("http://", "https://", "src=", "<link", "url(", "@import", "//cdn"):
            self.assertNotIn(needle, self.page, "the page must not fetch anything")

    def test_chromium_loads_it_and_the_dom_has_table_chart_and_flame_graph(self):
        dom = self.chromium("--dump-dom")
        body = re.search(r"<body([^>]*)>", dom).group(1)
        self.assertIn('data-ready="1"', body, "the page's script did not finish")
        self.assertNotIn("data-errors", body)
        sites = _report["sites"]
        rows = re.findall(r'<tr class="site[^"]*" data-rank="(\d+)"', dom)
        self.assertEqual([int(x) for x in rows], list(range(1, len(sites) + 1)))
        for s in sites[:4]:
            self.assertIn(s["frames"][0]["function"].replace("<", "&lt;").replace(">", "&gt;"), dom)
        # One chart line per charted site and process, each drawn through every dump.
        paths = re.findall(r'<path class="series[^"]*" data-rank="(\d+)" stroke="[^"]+" d="([^"]+)"', dom)
        charted = [s for s in sites if any(ps["points"] for ps in s["series"])][:8]
        self.assertEqual(len(paths), sum(len(s["series"]) for s in charted))
        for rank, d in paths:
            npoints = len(re.findall(r"[ML]", d))
            self.assertEqual(npoints, len(sites[int(rank) - 1]["series"][0]["points"]))
        # The chart climbs for the leaks: the first point is lower than the
        # last (SVG y grows downwards).
        fast = next(i + 1 for i, s in enumerate(sites) if s["frames"][0]["function"].endswith("leak_fast"))
        d = dict(paths)[str(fast)]
        ys = [float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", d)]
        self.assertGreater(ys[0], ys[-1])
        # Flame graph: the growing leaks are frames in it.
        flame = re.search(r'<svg class="flame".*?</svg>', dom, re.S).group(0)
        for fn in ("leak_fast", "leak_medium", "leak_slow"):
            self.assertIn(fn, flame)

    def test_screenshot_shows_chart_and_table(self):
        shot = os.path.join(_tmp, "shot.png")
        # Tall enough for the whole page: at 1,600 px the flame graph began
        # 200 px above the bottom edge, and a run whose table or header was a
        # line or two taller pushed it out of the picture (a flaky failure).
        self.chromium("--screenshot=" + shot, "--window-size=1280,2400")
        w, h, rows = read_png(shot)
        self.assertEqual((w, h), (1280, 2400))
        # The chart's lines in their colours, in the upper part of the page.
        counts = [0] * len(PALETTE)
        for y in range(0, h // 2):
            for px in rows[y]:
                for i, c in enumerate(PALETTE):
                    if abs(px[0] - c[0]) + abs(px[1] - c[1]) + abs(px[2] - c[2]) < 40:
                        counts[i] += 1
        for i, n in enumerate(counts):
            self.assertGreater(n, 150, "chart colour %d barely drawn: %s" % (i, counts))
        # Text in the table (dark pixels) and warm flame-graph boxes below the chart.
        dark = sum(1 for y in range(h // 2, h) for px in rows[y] if sum(px) < 200)
        warm = sum(1 for y in range(h // 2, h) for px in rows[y]
                   if px[0] >= 200 and 70 <= px[1] <= 210 and px[2] <= 95)
        self.assertGreater(dark, 2000, "no table text in the lower half")
        self.assertGreater(warm, 5000, "no flame graph in the lower half")


if __name__ == "__main__":
    unittest.main()
