#!/usr/bin/env python3
"""Runs the hot-path microbenchmarks under each configuration, alternating
(A B C A B C ...), and prints the median of run-by-run ratios against the
baseline measured in the same round. Usage: micro.py [BUILD_DIR] [ROUNDS]"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build"))
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
binary = os.path.join(build, "bench", "lw_micro_alloc")
configs = [
    ("baseline", {}),
    ("bare interposer", {"LD_PRELOAD": os.path.join(build, "bench", "liblw_bare_interposer.so")}),
    ("leakwatch 512k", {"LD_PRELOAD": os.path.join(build, "lib", "libleakwatch.so")}),
    ("leakwatch every alloc", {"LD_PRELOAD": os.path.join(build, "lib", "libleakwatch.so"),
                               "LEAKWATCH_SAMPLE_BYTES": "1"}),
]


def run(env_extra, dump_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKWATCH_") and k != "LD_PRELOAD"}
    env.update(env_extra)
    env["LEAKWATCH_DIR"] = dump_dir
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_min_time=0.2"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, timeout=600).stdout
    return {b["name"]: b["cpu_time"] for b in json.loads(out)["benchmarks"]}


with tempfile.TemporaryDirectory() as d:
    times = {name: [] for name, _ in configs}
    for r in range(rounds):
        for name, env in configs:
            times[name].append(run(env, d))
    names = list(times["baseline"][0].keys())
    header = "%-40s %10s" % ("benchmark", "base ns") + "".join(" %22s" % c for c, _ in configs[1:])
    print(header)
    for b in names:
        base = statistics.median(t[b] for t in times["baseline"])
        row = "%-40s %10.1f" % (b, base)
        for c, _ in configs[1:]:
            ratios = [times[c][i][b] / times["baseline"][i][b] for i in range(rounds)]
            row += " %21.2fx" % statistics.median(ratios)
        print(row)
    # Against the floor: leakwatch / bare interposer, pair by pair.
    print("\nleakwatch (512k) / bare interposer, median of pairs:")
    for b in names:
        ratios = [times["leakwatch 512k"][i][b] / times["bare interposer"][i][b] for i in range(rounds)]
        print("  %-40s %.2fx" % (b, statistics.median(ratios)))
