#!/usr/bin/env bash
# The whole-process benchmark suite (issue 5; not part of ctest).
# Usage, from the repo root: bash bench/run_suite.sh [suite.py options]
#   e.g. --quick (smoke test), --markdown out.md, --json out.json,
#        --only churn-1t,python, --skip micro, --rounds 9
# Needs: heaptrack, sqlite3, nodejs, libjemalloc2, time (Debian packages);
# a missing heaptrack or jemalloc leaves its column out.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${LEAKWATCH_BUILD_DIR:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target leakwatch_shim lw_bare_interposer lw_idle_thread lw_workloads lw_dump_stats lw_micro_alloc >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (2-core machines: prefer running when it is low)" >&2
exec python3 "$root/bench/suite.py" --build "$build" "$@"
