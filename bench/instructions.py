#!/usr/bin/env python3
"""Instruction counts and page faults of the suite's workloads (issue 15).

CPU time on a shared 2-core VM moves by 2-10% between identical runs, more
than the 1.02-1.03x targets it is meant to check. Two measures that do not
move: the instructions a run executes (valgrind's cachegrind, Ir, counting
only) and the page faults it takes (ru_minflt + ru_majflt of a native run;
each is several microseconds on a VM). Together they cover what the shim
adds: the code it runs and the memory it touches for the first time. What
they miss (cache and TLB misses the shim causes in the program) is what
the CPU-time suite measures, with its noise.

Workloads are the suite's, scaled down (valgrind runs them ~30-50x slower);
a scaled-down run weighs the shim's fixed costs (start, the exit dump) more
than the suite's run does, so these ratios err against the shim.

Usage (after bash bench/run_suite.sh has built everything, or a build):
  python3 bench/instructions.py [--build build] [--lw-lib X.so]
      [--alt-lib Y.so] [--only a,b] [--skip a,b] [--markdown out.md]
"""
import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import suite  # noqa: E402  (the workloads and configurations live there)

# workload -> argv index and value that scale it down for valgrind
SCALE = {
    "churn-1t": (2, "4000000"),
    "churn-2t": (2, "3000000"),
    "churn-3-leaks": (1, "4000000"),
    "deep-stacks": (1, "500000"),
    "node-buffers": (3, "1"),
}
CONFIGS = ("base", "bare", "lw", "lw-alt")
# The runtimes' own randomness, off for counting: CPython's hash seed (dict
# layouts; +-1% between runs), V8's (--predictable: deterministic JIT and
# GC decisions; +-2% between runs without it).
DETERMINISTIC_ENV = {"python": {"PYTHONHASHSEED": "0"}}
DETERMINISTIC_ARGS = {"node-buffers": ["--predictable"]}
# Workloads whose count under the shim depends on the sampling draw: where
# sampled blocks land changes which reallocs glibc can extend in place, so
# realloc-growth's copying moves by +-2% from run to run (measured: 17.33,
# 17.51, 17.82 and 18.00 G instructions, one build). Median of RUNS runs.
RUNS = {"realloc-growth": 3}


def instructions(argv, env, stdin_path, lib, timeout):
    """Ir summed over every process of the run, the `env` wrapper aside."""
    out = tempfile.mkdtemp(prefix="lw-instr-")
    try:
        wrapped = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--branch-sim=no",
                   "--trace-children=yes", f"--cachegrind-out-file={out}/cg.%p", "-q", "env"]
        if lib:
            wrapped.append(f"LD_PRELOAD={lib}")
        wrapped += argv
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        try:
            p = subprocess.run(wrapped, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=timeout, check=False)
        finally:
            if stdin_path:
                stdin.close()
        if p.returncode != 0:  # a partial count would read as a cheap run
            sys.exit(f"instructions.py: {' '.join(argv)} exited {p.returncode} under valgrind: "
                     f"{p.stderr.decode(errors='replace').strip()[-500:]}")
        total = 0
        for f in glob.glob(f"{out}/cg.*"):
            cmd, ir = "", 0
            with open(f) as fh:
                for line in fh:
                    if line.startswith("cmd:"):
                        cmd = line[4:].strip()
                    elif line.startswith("summary:"):
                        ir = int(line.split()[1])
            if not cmd.startswith("env "):
                total += ir
        return total
    finally:
        shutil.rmtree(out, ignore_errors=True)


def faults(argv, env, stdin_path, lib, timeout):
    """Page faults of one native run and the children it waited for (the
    growth of this process's children's totals: runs are one at a time)."""
    run_env = dict(env)
    if lib:
        run_env["LD_PRELOAD"] = lib
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        subprocess.run(argv, env=run_env, stdin=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=True)
    finally:
        if stdin_path:
            stdin.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_minflt - before.ru_minflt) + (after.ru_majflt - before.ru_majflt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(suite.ROOT, "build"))
    ap.add_argument("--lw-lib")
    ap.add_argument("--alt-lib")
    ap.add_argument("--only")
    ap.add_argument("--skip", default="")
    ap.add_argument("--fault-runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("instructions.py: valgrind is not installed (Debian package valgrind)")
    lw_lib = a.lw_lib or os.path.join(a.build, "lib", "libleakwatch.so")
    cfgs = suite.configurations(a.build, lw_lib, a.alt_lib)
    names = [c for c in CONFIGS if c in cfgs]
    only = set(a.only.split(",")) if a.only else None
    skip = set(filter(None, a.skip.split(",")))
    rows = []
    # Beside the suite's long runs: 50 short processes (a shell loop of
    # /bin/true), where the shim's per-process cost (start, exit dump) is
    # all there is. The shell itself runs under the preload too.
    spawn = ("spawn-50", ["/bin/sh", "-c", "i=0; while [ $i -lt 50 ]; do /bin/true; i=$((i+1)); done"], {}, None, "spawn")
    for name, argv, extra, stdin_path, _group in suite.workloads(a.build) + [spawn]:
        if (only and name not in only) or name in skip:
            continue
        argv = list(argv)
        if name in SCALE:
            i, v = SCALE[name]
            argv[i] = v
        argv[1:1] = DETERMINISTIC_ARGS.get(name, [])
        extra = dict(extra, **DETERMINISTIC_ENV.get(name, {}))
        row = {"workload": name}
        for c in names:
            lib, cenv, _prefix = cfgs[c]
            with tempfile.TemporaryDirectory(prefix="lw-instr-dir-") as d:
                env = suite.clean_env()
                env.update(extra)
                env.update(cenv)
                env["LEAKWATCH_DIR"] = d
                runs = RUNS.get(name, 1) if lib else 1
                row[c] = statistics.median(instructions(argv, env, stdin_path, lib, a.timeout) for _ in range(runs))
                row[c + "_pf"] = statistics.median(
                    faults(argv, env, stdin_path, lib, a.timeout) for _ in range(a.fault_runs))
        rows.append(row)
        print(name, {k: v for k, v in row.items() if k != "workload"}, file=sys.stderr, flush=True)

    head = "| workload | base Ir | bare/base | lw/base | **lw/bare** |"
    sep = "|---|---:|---:|---:|---:|"
    if "lw-alt" in names:
        head += " lw-alt/lw |"
        sep += "---:|"
    head += " page faults base / bare / lw |"
    sep += "---:|"
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['workload']} | {r['base'] / 1e6:,.0f} M | {r['bare'] / r['base']:.4f}x | "
                f"{r['lw'] / r['base']:.4f}x | **{r['lw'] / r['bare']:.4f}x** |")
        if "lw-alt" in names:
            line += f" {r['lw-alt'] / r['lw']:.4f}x |"
        line += f" {r['base_pf']:,.0f} / {r['bare_pf']:,.0f} / {r['lw_pf']:,.0f} |"
        lines.append(line)
    if any(r["workload"] == "mmap-churn" for r in rows):
        lines.append("")
        lines.append("mmap-churn spends its time in system calls and page faults: its user-space instructions are "
                     "a small part of its CPU time, so its instruction ratio says little (the CPU-time suite measures it).")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
