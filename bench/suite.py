#!/usr/bin/env python3
"""Whole-process benchmark suite for leakwatch (issue 5). Run it through
bench/run_suite.sh, which builds what it needs first.

Every workload runs under every configuration, alternating (A B C ... A B
C ...), the order rotated each round; a ratio is the median over rounds of
the pair-by-pair ratio of two configurations measured in the same round,
never a ratio of absolute times taken at different moments. The machine is
shared and small, so absolute times are printed only for orientation.

Times are CPU time (user + system of the process and everything it waited
for, from wait4's rusage) unless a column says wall. Beside them: peak RSS
(ru_maxrss of the largest process), bytes written by the tool (dump
directory, heaptrack's output, jemalloc's profiles) and, for the 2-thread
workload, voluntary context switches (ru_nvcsw).

Afterwards: the realloc sampling check, the shim's own memory on a 1 GiB
live heap, the dump size for 1,000 live stacks, and (unless --skip micro)
the Google Benchmark microbenchmarks through bench/micro.py.

Results and their reading: docs/performance.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
JE_PROF_CONF = "prof:true,lg_prof_sample:19"

# ---- configurations -------------------------------------------------------
# name -> (LD_PRELOAD or None, extra env, command prefix). "heavy" ones run
# only in the first --heavy-rounds rounds (they are 1.5-45x slower).
HEAVY = ("lw-all", "heaptrack", "lw-all-alt")


def configurations(build, lw_lib, alt_lib=None):
    bare = os.path.join(build, "bench", "liblw_bare_interposer.so")
    idle = os.path.join(build, "bench", "liblw_idle_thread.so")
    cfgs = {
        "base": (None, {}, []),
        "bare": (bare, {}, []),
        # The floor plus one idle thread: what a shim with a background
        # thread pays before doing anything (glibc's malloc leaves its
        # single-thread fast paths).
        "bare-thr": (f"{bare}:{idle}", {}, []),
        "lw": (lw_lib, {}, []),
        "lw-all": (lw_lib, {"LEAKWATCH_SAMPLE_BYTES": "1"}, []),
        # Record-only heaptrack: the data goes through a pipe to zstd/gzip,
        # heaptrack_interpret is not run (cheapest heaptrack there is).
        "heaptrack": (None, {}, ["heaptrack", "--raw", "-o", "{run}/heaptrack.out"]),
        "je": (JEMALLOC, {}, []),
        "je-prof": (JEMALLOC, {"MALLOC_CONF": JE_PROF_CONF}, []),
    }
    if alt_lib:
        # Another build of the shim (a candidate change) beside the current one.
        cfgs["lw-alt"] = (alt_lib, {}, [])
        cfgs["lw-all-alt"] = (alt_lib, {"LEAKWATCH_SAMPLE_BYTES": "1"}, [])
    return cfgs


# ---- workloads ------------------------------------------------------------
def workloads(build):
    w = os.path.join(build, "bench", "workloads")
    s = os.path.join(HERE, "workloads")
    py = {"PYTHONMALLOC": "malloc"}
    return [
        # name, argv, extra env, stdin file, group
        ("churn-1t", [f"{w}/churn", "1", "40000000"], {}, None, "churn"),
        ("churn-2t", [f"{w}/churn", "2", "30000000"], {}, None, "churn"),
        ("churn-3-leaks", [f"{w}/leaks", "40000000"], {}, None, "churn"),
        ("stl", [f"{w}/stl", "16"], {}, None, "synthetic"),
        ("realloc-growth", [f"{w}/realloc_growth", "realloc", "60000"], {}, None, "synthetic"),
        ("deep-stacks", [f"{w}/deep_stacks", "2500000"], {}, None, "deep"),
        ("mmap-churn", [f"{w}/mmap_churn", "20000"], {}, None, "synthetic"),
        ("python", ["/usr/bin/python3", f"{s}/python_work.py", "1"], py, None, "real"),
        # --single-threaded-gc: V8's concurrent GC threads made the CPU time
        # of identical runs vary 0.6..2 s on this 2-core machine.
        ("node-buffers", ["node", "--single-threaded-gc", f"{s}/node_buffers.js", "3"], {}, None, "real"),
        ("sqlite3", ["sqlite3", ":memory:"], {}, f"{s}/sqlite_rows.sql", "real"),
    ]


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LEAKWATCH_") and k not in ("LD_PRELOAD", "MALLOC_CONF", "PYTHONMALLOC")}
    return env


def dir_bytes(path):
    total = 0
    for dp, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dp, f)).st_size
            except OSError:
                pass
    return total


def run_once(argv, preload, extra_env, prefix, stdin_path, timeout=600, keep_dir=None):
    """Runs one process; returns measurements. The process runs in a fresh
    directory, which also receives everything the tool writes."""
    run_dir = tempfile.mkdtemp(prefix="lwbench-")
    try:
        env = clean_env()
        env.update(extra_env)
        env["LEAKWATCH_DIR"] = os.path.join(run_dir, "dumps")
        if preload:
            env["LD_PRELOAD"] = preload
        cmd = [a.replace("{run}", run_dir) for a in prefix] + argv
        out_path = os.path.join(run_dir, ".stdout")
        err_path = os.path.join(run_dir, ".stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err, \
                open(stdin_path or os.devnull, "rb") as stdin:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, env=env, cwd=run_dir, stdin=stdin, stdout=out, stderr=err)
            deadline = t0 + timeout
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    p.kill()
                    pid, status, ru = os.wait4(p.pid, 0)
                    break
                time.sleep(0.002)
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
        stdout = open(out_path, "rb").read().decode(errors="replace")
        stderr = open(err_path, "rb").read().decode(errors="replace")
        os.unlink(out_path)
        os.unlink(err_path)
        m = re.search(r"checksum=(\d+)", stdout)
        res = {
            "wall": wall,
            "cpu": ru.ru_utime + ru.ru_stime,
            "rss_kib": ru.ru_maxrss,
            "nvcsw": ru.ru_nvcsw,
            "nivcsw": ru.ru_nivcsw,
            "written": dir_bytes(run_dir),
            "rc": p.returncode,
            "checksum": m.group(1) if m else None,
            "stderr_tail": stderr[-400:],
        }
        if p.returncode != 0 or not m:
            res["error"] = (stderr[-800:] or stdout[-800:]).strip()
        if keep_dir and os.path.isdir(os.path.join(run_dir, "dumps")):
            shutil.copytree(os.path.join(run_dir, "dumps"), keep_dir, dirs_exist_ok=True)
        return res
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pair_ratio(runs, a, b, key="cpu"):
    """Median over rounds of runs[a][r][key] / runs[b][r][key], rounds
    where both ran."""
    ra, rb = runs.get(a, {}), runs.get(b, {})
    xs = [ra[r][key] / rb[r][key] for r in ra if r in rb and rb[r][key] > 0 and "error" not in ra[r]
          and "error" not in rb[r]]
    return (statistics.median(xs), len(xs), min(xs), max(xs)) if xs else None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the main matrix ------------------------------------------------------
def run_matrix(args, cfgs, wls):
    results = {}
    names = [c for c in args.configs]
    for wname, argv, env, stdin, group in wls:
        log(f"== {wname}: {' '.join(os.path.basename(a) for a in argv)}")
        # Warm-up (page cache, lazy binding of the interpreters): not counted.
        run_once(argv, None, env, [], stdin)
        runs = {c: {} for c in names}
        for r in range(args.rounds):
            k = r % len(names)
            order = names[k:] + names[:k]
            for c in order:
                if c in HEAVY and r >= args.heavy_rounds:
                    continue
                preload, cenv, prefix = cfgs[c]
                e = dict(env)
                e.update(cenv)
                res = run_once(argv, preload, e, prefix, stdin)
                runs[c][r] = res
                if "error" in res:
                    log(f"   {c} round {r}: FAILED rc={res['rc']}: {res['error'][:300]}")
            line = " ".join(f"{c}={runs[c][r]['cpu']:.2f}" for c in names if r in runs[c])
            log(f"   round {r}: cpu s {line}")
        sums = {res["checksum"] for c in names for res in runs[c].values()}
        if len(sums) != 1:
            log(f"   WARNING: checksums differ across configurations: {sums}")
        results[wname] = {"group": group, "argv": argv, "runs": {c: {str(r): v for r, v in runs[c].items()}
                                                                  for c in names}}
    return results


RATIOS = [
    # label, numerator, denominator
    ("bare/base", "bare", "base"),
    ("lw/base", "lw", "base"),
    ("lw/bare", "lw", "bare"),
    ("bare-thr/bare", "bare-thr", "bare"),
    ("lw/bare-thr", "lw", "bare-thr"),
    ("lw-all/base", "lw-all", "base"),
    ("heaptrack/base", "heaptrack", "base"),
    ("heaptrack/lw-all", "heaptrack", "lw-all"),
    ("lw-alt/bare", "lw-alt", "bare"),
    ("lw-alt/lw", "lw-alt", "lw"),
    ("lw-all-alt/lw-all", "lw-all-alt", "lw-all"),
    ("heaptrack/lw-all-alt", "heaptrack", "lw-all-alt"),
    ("je/base", "je", "base"),
    ("je-prof/je", "je-prof", "je"),
]


def runs_of(wres):
    return {c: {int(r): v for r, v in rr.items()} for c, rr in wres["runs"].items()}


def fmt_ratio(x):
    return "—" if x is None else f"{x[0]:.3f}x"


def matrix_tables(results, configs):
    lines = []
    labels = [(l, a, b) for l, a, b in RATIOS if a in configs and b in configs]
    for key, title in (("cpu", "CPU time (user+sys), median of pair-by-pair ratios"),
                       ("wall", "Wall time, median of pair-by-pair ratios")):
        lines.append(f"#### {title}\n")
        lines.append("| workload | base s | " + " | ".join(l for l, _, _ in labels) + " |")
        lines.append("|---|---:|" + "---:|" * len(labels))
        for w, wres in results.items():
            runs = runs_of(wres)
            base = med([v[key] for v in runs.get("base", {}).values()])
            row = f"| {w} | {base:.2f} | " if base is not None else f"| {w} | — | "
            row += " | ".join(fmt_ratio(pair_ratio(runs, a, b, key)) for _, a, b in labels) + " |"
            lines.append(row)
        lines.append("")
    lines.append("#### Peak RSS (MiB, median) and bytes written by the tool (median)\n")
    lines.append("| workload | " + " | ".join(configs) + " |")
    lines.append("|---|" + "---:|" * len(configs))
    for w, wres in results.items():
        runs = runs_of(wres)
        cells = []
        for c in configs:
            rs = runs.get(c, {}).values()
            if not rs:
                cells.append("—")
                continue
            rss = med([v["rss_kib"] for v in rs]) / 1024
            wr = med([v["written"] for v in rs])
            cells.append(f"{rss:.0f} / {human(wr)}")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines.append("")
    if "churn-2t" in results:
        runs = runs_of(results["churn-2t"])
        lines.append("#### churn-2t: context switches per run (median; voluntary / involuntary)\n")
        lines.append("| " + " | ".join(configs) + " |")
        lines.append("|" + "---:|" * len(configs))
        lines.append("| " + " | ".join(
            f"{med([v['nvcsw'] for v in runs[c].values()]):.0f} / {med([v['nivcsw'] for v in runs[c].values()]):.0f}"
            if runs.get(c) else "—" for c in configs) + " |")
        lines.append("")
    return "\n".join(lines)


def human(n):
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


# ---- extra measurements ---------------------------------------------------
def dump_stats(build, directory):
    out = subprocess.run([os.path.join(build, "bench", "lw_dump_stats"), directory], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


REALLOC_CASES = [
    # label, realloc_growth arguments
    ("realloc, appends of 8..71 B", ["realloc", "60000"]),
    ("malloc of the same final sizes", ["malloc", "60000"]),
    ("malloc of every intermediate size", ["malloc-each", "60000"]),
    ("realloc, appends of 1..4 B", ["realloc", "8000", "4"]),
    ("malloc of the same final sizes (1..4 B case)", ["malloc", "8000", "4"]),
]


def realloc_check(args, cfgs):
    """Realloc is charged by growth: the sample count of realloc mode should
    match malloc of the final sizes (same bytes), not malloc of every
    intermediate size, and the allocated-bytes estimate should match the
    bytes grown. Also times realloc vs malloc mode, shim vs floor."""
    w = os.path.join(args.build, "bench", "workloads", "realloc_growth")
    out = {}
    for label, tail in REALLOC_CASES:
        out[label] = {"args": tail, "samples": [], "alloc_est": [], "grown": None, "expected": None}
    for r in range(args.check_rounds):
        for label, tail in REALLOC_CASES:
            keep = tempfile.mkdtemp(prefix="lwrealloc-")
            res = run_once([w] + tail, cfgs["lw"][0], {}, [], None, keep_dir=keep)
            m = re.search(r"(\d+) bytes grown, (\d+) samples expected", res["stderr_tail"])
            if m:
                out[label]["grown"], out[label]["expected"] = int(m.group(1)), int(m.group(2))
            st = dump_stats(args.build, keep)
            fin = [x for x in st if x["final"]] or st
            if fin:
                out[label]["samples"].append(fin[-1]["total_samples"])
                out[label]["alloc_est"].append(fin[-1]["alloc_bytes"])
            shutil.rmtree(keep, ignore_errors=True)
    timing = {}
    names = ["bare", "bare-thr", "lw"]
    for mode in ("realloc", "malloc"):
        runs = {c: {} for c in names}
        for r in range(args.check_rounds + 2):
            k = r % len(names)
            for c in names[k:] + names[:k]:
                runs[c][r] = run_once([w, mode, "60000"], cfgs[c][0], {}, [], None)
        timing[mode] = {"lw/bare": pair_ratio(runs, "lw", "bare"), "lw/bare-thr": pair_ratio(runs, "lw", "bare-thr"),
                        "bare-thr/bare": pair_ratio(runs, "bare-thr", "bare")}
    return {"cases": out, "timing": timing}


def live_heap_check(args, cfgs):
    w = os.path.join(args.build, "bench", "workloads", "live_heap")
    runs = {c: {} for c in ("base", "bare", "lw")}
    mapped = []
    for r in range(args.check_rounds):
        for c in (["base", "bare", "lw"] if r % 2 == 0 else ["lw", "bare", "base"]):
            keep = tempfile.mkdtemp(prefix="lwheap-") if c == "lw" else None
            runs[c][r] = run_once([w, str(args.live_heap_mib)], cfgs[c][0], {}, [], None, keep_dir=keep)
            if keep:
                st = dump_stats(args.build, keep)
                if st:
                    mapped.append(st[-1]["shim_mapped_bytes"])
                shutil.rmtree(keep, ignore_errors=True)
    diffs = [(runs["lw"][r]["rss_kib"] - runs["base"][r]["rss_kib"]) * 1024 for r in runs["lw"]]
    diffs_bare = [(runs["lw"][r]["rss_kib"] - runs["bare"][r]["rss_kib"]) * 1024 for r in runs["lw"]]
    return {
        "live_heap_bytes": args.live_heap_mib << 20,
        "rss_base_kib": med([v["rss_kib"] for v in runs["base"].values()]),
        "rss_bare_kib": med([v["rss_kib"] for v in runs["bare"].values()]),
        "rss_lw_kib": med([v["rss_kib"] for v in runs["lw"].values()]),
        "shim_bytes": med(diffs),
        "shim_bytes_vs_bare": med(diffs_bare),
        "shim_mapped_bytes": med(mapped),
        "cpu_lw_over_base": pair_ratio(runs, "lw", "base"),
    }


def live_stacks_check(args, cfgs):
    w = os.path.join(args.build, "bench", "workloads", "live_stacks")
    keep = tempfile.mkdtemp(prefix="lwstacks-")
    res = run_once([w, "1000", "1.3"], cfgs["lw"][0], {"LEAKWATCH_INTERVAL": "0.5"}, [], None, keep_dir=keep)
    listing = subprocess.run(["ls", "-l", keep], stdout=subprocess.PIPE, text=True).stdout
    st = dump_stats(args.build, keep)
    shutil.rmtree(keep, ignore_errors=True)
    return {"ls": listing, "dumps": st, "rc": res["rc"]}


def micro(args):
    p = subprocess.run([sys.executable, os.path.join(HERE, "micro.py"), args.build, str(args.micro_rounds)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.stdout


# ---- report ---------------------------------------------------------------
def targets(results, extra):
    t = []

    def worst(names, a, b):
        vals = [(pair_ratio(runs_of(results[n]), a, b), n) for n in names if n in results]
        vals = [(v[0], n) for v, n in vals if v]
        return max(vals) if vals else None

    churn = [w for w, r in results.items() if r["group"] == "churn"]
    real = [w for w, r in results.items() if r["group"] in ("real", "deep")]
    x = worst(churn, "lw", "bare")
    if x:
        t.append(("default sampling <= 1.03x the bare-interposer floor on the malloc-churn workloads",
                  f"worst {x[0]:.3f}x ({x[1]})", x[0] <= 1.03))
    x = worst(real, "lw", "base")
    if x:
        t.append(("default sampling <= 1.02x baseline on the real programs and the deep-stack workload",
                  f"worst {x[0]:.3f}x ({x[1]})", x[0] <= 1.02))
    vals = [(pair_ratio(runs_of(r), "heaptrack", "lw-all"), w) for w, r in results.items()]
    vals = [(v[0], w) for v, w in vals if v]
    if vals:
        x = min(vals)
        t.append(("every-allocation mode >= 3x less CPU than heaptrack on every workload",
                  f"worst {x[0]:.2f}x ({x[1]})", x[0] >= 3))
    lh = extra.get("live_heap")
    if lh and lh["shim_bytes"] is not None:
        limit = lh["live_heap_bytes"] * 0.01 + 8 * 2**20
        t.append(("shim memory <= 1% of live heap + 8 MiB",
                  f"{human(lh['shim_bytes'])} on {human(lh['live_heap_bytes'])} live "
                  f"({100.0 * lh['shim_bytes'] / lh['live_heap_bytes']:.2f}%; limit {human(limit)})",
                  lh["shim_bytes"] <= limit))
    ls = extra.get("live_stacks")
    if ls and ls["dumps"]:
        biggest = max(d["bytes"] for d in ls["dumps"])
        stacks = max(d["live_stacks"] for d in ls["dumps"])
        t.append(("dump < 64 KiB for 1,000 live stacks", f"largest dump {human(biggest)} with {stacks} live stacks",
                  biggest < 64 * 1024))
    return t


def render(args, results, extra, elapsed, load_before, load_after):
    out = []
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out.append(f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
               f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}; "
               f"load average before {load_before}, after {load_after}; suite took {elapsed / 60:.1f} min; "
               f"{args.rounds} rounds ({args.heavy_rounds} for lw-all and heaptrack).\n")
    out.append("Configurations: base = no preload; bare = bench/bare_interposer.c (forwarding only); "
               "lw = libleakwatch.so at the default 512 KiB; lw-all = LEAKWATCH_SAMPLE_BYTES=1; "
               "heaptrack = `heaptrack --raw` (record-only); je = LD_PRELOAD=libjemalloc.so.2; "
               f"je-prof = jemalloc with MALLOC_CONF={JE_PROF_CONF}.\n")
    if results:
        out.append(matrix_tables(results, args.configs))
    rc = extra.get("realloc")
    if rc:
        out.append("#### Realloc is charged by growth (leakwatch at 512 KiB, final dump)\n")
        out.append("| case (realloc_growth args) | bytes grown | samples expected | samples (median) "
                   "| allocated-bytes estimate (median) | estimate / truth |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for label, v in rc["cases"].items():
            est = med(v["alloc_est"])
            truth = v["grown"]
            out.append(f"| {label} (`{' '.join(v['args'])}`) | {human(truth)} | {v['expected']} | {med(v['samples'])} "
                       f"| {human(est)} | {est / truth:.3f} |" if est is not None and truth else
                       f"| {label} | — | — | — | — | — |")
        out.append("")
        out.append("CPU time of the realloc workload vs the same bytes by malloc (median of pair ratios):\n")
        out.append("| mode | lw/bare | lw/bare-thr | bare-thr/bare |")
        out.append("|---|---:|---:|---:|")
        for mode, t in rc["timing"].items():
            out.append(f"| {mode} | {fmt_ratio(t['lw/bare'])} | {fmt_ratio(t['lw/bare-thr'])} | "
                       f"{fmt_ratio(t['bare-thr/bare'])} |")
        out.append("")
    lh = extra.get("live_heap")
    if lh:
        out.append("#### Shim memory on a large live heap (live_heap, default sampling)\n")
        out.append(f"live heap {human(lh['live_heap_bytes'])} requested in 32..96-byte blocks; peak RSS base "
                   f"{lh['rss_base_kib'] / 1024:.0f} MiB, bare {lh['rss_bare_kib'] / 1024:.0f} MiB, leakwatch "
                   f"{lh['rss_lw_kib'] / 1024:.0f} MiB; shim = {human(lh['shim_bytes'])} "
                   f"({100.0 * lh['shim_bytes'] / lh['live_heap_bytes']:.2f}% of the live heap; vs bare "
                   f"{human(lh['shim_bytes_vs_bare'])}); shim's own mappings (virtual) {human(lh['shim_mapped_bytes'])}; "
                   f"CPU lw/base {fmt_ratio(lh['cpu_lw_over_base'])}.\n")
    ls = extra.get("live_stacks")
    if ls:
        out.append("#### Dump size, 1,000 live stacks (live_stacks 1000, LEAKWATCH_INTERVAL=0.5)\n")
        out.append("```\n" + ls["ls"].rstrip() + "\n```\n")
        for d in ls["dumps"]:
            out.append(f"- seq {d['seq']}{' (final)' if d['final'] else ''}: {d['bytes']} bytes, "
                       f"{d['stacks']} stacks, {d['live_stacks']} live stacks, {d['records']} records")
        out.append("")
    t = targets(results, extra)
    if t:
        out.append("#### Targets\n")
        out.append("| target | measured | met |")
        out.append("|---|---|---|")
        for name, got, ok in t:
            out.append(f"| {name} | {got} | {'yes' if ok else '**no**'} |")
        out.append("")
    if extra.get("micro"):
        out.append("#### Microbenchmarks (bench/micro.py, CPU time per operation)\n")
        out.append("```\n" + extra["micro"].rstrip() + "\n```\n")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--lw-lib", help="the shim to measure (default BUILD/lib/libleakwatch.so)")
    ap.add_argument("--alt-lib", help="a second shim build to compare (adds configs lw-alt, lw-all-alt; "
                    "pass --configs to choose)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--heavy-rounds", type=int, default=2, help="rounds that include lw-all and heaptrack")
    ap.add_argument("--check-rounds", type=int, default=3)
    ap.add_argument("--micro-rounds", type=int, default=3)
    ap.add_argument("--configs", default=",".join(["base", "bare", "bare-thr", "lw", "lw-all", "heaptrack", "je", "je-prof"]))
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--skip", default="", help="comma-separated: matrix,realloc,heap,stacks,micro")
    ap.add_argument("--live-heap-mib", type=int, default=1024)
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--markdown", help="write the report here too")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, 1 heavy, no micro")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.lw_lib = os.path.abspath(args.lw_lib or os.path.join(args.build, "lib", "libleakwatch.so"))
    args.configs = args.configs.split(",")
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        args.rounds, args.heavy_rounds, args.check_rounds = 2, 1, 1
        skip.add("micro")
    if args.alt_lib:
        args.alt_lib = os.path.abspath(args.alt_lib)
    cfgs = configurations(args.build, args.lw_lib, args.alt_lib)
    unknown = [c for c in args.configs if c not in cfgs]
    if unknown:
        ap.error(f"unknown configurations {unknown} (lw-alt needs --alt-lib)")
    if "heaptrack" in args.configs and not shutil.which("heaptrack"):
        log("heaptrack not installed (apt-get install heaptrack): leaving that column out")
        args.configs.remove("heaptrack")
    if not os.path.exists(JEMALLOC):
        log("libjemalloc2 not installed: leaving the jemalloc columns out")
        args.configs = [c for c in args.configs if not c.startswith("je")]
    else:
        # Debian's jemalloc is built with --enable-prof; say so if not.
        chk = subprocess.run(["/bin/true"], env=dict(clean_env(), LD_PRELOAD=JEMALLOC,
                                                     MALLOC_CONF="prof:true"), stderr=subprocess.PIPE, text=True)
        if "Invalid conf" in chk.stderr:
            log("this jemalloc has no heap profiling (prof not compiled in): leaving je-prof out")
            args.configs = [c for c in args.configs if c != "je-prof"]
    wls = workloads(args.build)
    if args.only:
        keep = set(args.only.split(","))
        wls = [w for w in wls if w[0] in keep]
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    t0 = time.time()
    results = run_matrix(args, cfgs, wls) if "matrix" not in skip else {}
    extra = {}
    if "realloc" not in skip:
        log("== realloc sampling check")
        extra["realloc"] = realloc_check(args, cfgs)
    if "heap" not in skip:
        log("== shim memory on a live heap")
        extra["live_heap"] = live_heap_check(args, cfgs)
    if "stacks" not in skip:
        log("== dump size for 1,000 live stacks")
        extra["live_stacks"] = live_stacks_check(args, cfgs)
    if "micro" not in skip:
        log("== microbenchmarks (micro.py)")
        extra["micro"] = micro(args)
    load_after = " ".join(open("/proc/loadavg").read().split()[:3])
    text = render(args, results, extra, time.time() - t0, load_before, load_after)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "extra": extra}, f, indent=1)


if __name__ == "__main__":
    main()
