#!/usr/bin/env bash
# Reporter scale benchmark: 1,000 dumps (10 processes x 100) with 10,000
# distinct stacks each; prints wall time and peak RSS of `leakwatch report`.
set -euo pipefail
build="$(cd "${1:-$(dirname "$0")/../build}" && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$build/bench/lw_gen_dumps" "$dir" 10 100 10000
du -sh "$dir" | awk '{print "on disk: " $1}'
/usr/bin/time -f "report: %e s wall, %M KiB peak RSS" "$build/bin/leakwatch" report "$dir" --format json --out "$dir/r.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); g=[s for s in r['sites'] if s['verdict']=='growing']; print('sites', len(r['sites']), 'growing', len(g), [round(s['growth_bytes_per_s']) for s in g])" "$dir/r.json"
