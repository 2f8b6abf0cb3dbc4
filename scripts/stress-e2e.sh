#!/usr/bin/env bash
# Runs the end-to-end package (qt-e2e) RUNS times in a row (default 10) with no retries while
# another process keeps one core busy, and prints how many runs passed. Exits non-zero when any
# run failed; each failing run's output is kept in .data/stress-e2e/run-N.log, and the stack
# folders of its tests (service logs and databases) in .data/stress-e2e/tmp-N.
#
#   scripts/stress-e2e.sh            # 10 runs, one core kept busy by a spin loop
#   RUNS=3 scripts/stress-e2e.sh     # fewer runs
#   LOAD=build scripts/stress-e2e.sh # the load is a release build of the workspace instead
#                                    # (into its own target dir, restarted while the runs go on)
#   LOAD=none scripts/stress-e2e.sh  # no extra load
#
# Extra arguments go to cargo nextest (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_pkg redis-server redis-server redis-tools
runs=${RUNS:-10}
load=${LOAD:-spin}
logs=.data/stress-e2e
mkdir -p "$logs"

echo "==> build"
cargo build --workspace --all-targets --locked

load_pid=
stop_load() {
  if [ -n "$load_pid" ]; then
    kill -- "-$load_pid" 2>/dev/null || kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
  fi
}
trap stop_load EXIT
case "$load" in
  spin)
    set -m
    (while :; do :; done) &
    load_pid=$!
    set +m
    ;;
  build)
    set -m
    (while :; do
       CARGO_TARGET_DIR=target/stress-load cargo build --workspace --release --locked -q \
         >/dev/null 2>&1 || true
       CARGO_TARGET_DIR=target/stress-load cargo clean --release -q -p qt-events >/dev/null 2>&1 || true
     done) &
    load_pid=$!
    set +m
    ;;
  none) ;;
  *) echo "LOAD must be spin, build or none, not $load" >&2; exit 2 ;;
esac

passed=0
failed=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  tmp="$PWD/$logs/tmp-$i"
  mkdir -p "$tmp"
  if TMPDIR="$tmp" QT_E2E_KEEP=1 cargo nextest run -p qt-e2e --locked --retries 0 --no-fail-fast "$@" \
      >"$logs/run-$i.log" 2>&1; then
    passed=$((passed + 1))
    echo "run $i/$runs: passed ($(( $(date +%s) - start )) s)"
    rm -rf "$tmp" "$logs/run-$i.log"
  else
    failed+=("$i")
    echo "run $i/$runs: FAILED ($(( $(date +%s) - start )) s), see $logs/run-$i.log:"
    grep -E '^\s+(FAIL|SIGKILL|TIMEOUT|SIGSEGV|SIGABRT) ' "$logs/run-$i.log" | sed 's/^/    /' || true
  fi
done
echo "==> qt-e2e: $passed of $runs runs passed (load: $load)"
[ "${#failed[@]}" = 0 ]
