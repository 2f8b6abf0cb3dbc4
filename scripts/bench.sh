#!/usr/bin/env bash
# Runs every benchmark and prints its figures (docs/PERFORMANCE.md records them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_pkg redis-server redis-server redis-tools
# Benchmarks that need the large data set (12 symbols x ~88k 5m candles) read QT_BENCH_DATA;
# by default the repo's copy.
export QT_BENCH_DATA="${QT_BENCH_DATA:-$PWD/data/spot-10m/5m}"
for target in $(cargo metadata --no-deps --format-version 1 \
    | python3 -c 'import json,sys; [print(p["name"]+":"+t["name"]) for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "bench" in t["kind"]]'); do
  pkg=${target%%:*}; bench=${target#*:}
  echo "==> $pkg / $bench"
  cargo bench --locked -p "$pkg" --bench "$bench"
done
