#!/usr/bin/env bash
# GBDT side-by-side: our booster (qt-models, as `qtctl train` fits it) against XGBoost `hist`
# and LightGBM on the same rows, the same trees and the same settings. Not part of the test
# suite. Writes everything under target/ (a Python venv, the rows file, the scratch builds).
#
#   scripts/bench/gbdt_side_by_side.sh [DATA_DIR] [RUNS]
#
#   DATA_DIR  kline folder the rows are built from (default data/futures/5m)
#   RUNS      timed runs of each engine, in turn (default 3)
#   QT_BENCH_ALTERNATIVES=1   also build and run LightGBM through the `lightgbm3` crate (needs
#             g++, libclang-dev; cmake >= 3.28 comes from PyPI into the venv) and
#             `perpetual` (3.0.0-rc.2), each a scratch crate outside the workspace; prints
#             their clean build times.
#
# Each engine prints one line: fit_s (both one-vs-rest boosters, in-process wall seconds) and
# the test AUC of each; /usr/bin/time adds the whole process's wall and CPU seconds. XGBoost
# and LightGBM run with OMP_WAIT_POLICY=PASSIVE: on a shared machine OpenMP's default spinning
# burns the time slices other processes need and makes their wall time meaningless.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${1:-data/futures/5m}
RUNS=${2:-3}
OUT=target/gbdt-bench
VENV=target/bench-venv
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import xgboost, lightgbm, sklearn, numpy' 2>/dev/null ||
    "$VENV/bin/pip" install -q xgboost lightgbm scikit-learn numpy

cargo build --release -q -p qt-models --example gbdt_rows --example train
ROWS="$OUT/$(basename "$(dirname "$DATA")")-$(basename "$DATA").rows"
target/release/examples/gbdt_rows export --data "$DATA" --out "$ROWS"

engines=(
    "target/release/examples/gbdt_rows fit --rows $ROWS"
    "env OMP_WAIT_POLICY=PASSIVE $VENV/bin/python scripts/bench/gbdt_side_by_side.py --rows $ROWS --engine xgboost"
    "env OMP_WAIT_POLICY=PASSIVE $VENV/bin/python scripts/bench/gbdt_side_by_side.py --rows $ROWS --engine lightgbm"
)

if [ "${QT_BENCH_ALTERNATIVES:-0}" = 1 ]; then
    "$VENV/bin/python" -c 'import cmake' 2>/dev/null || "$VENV/bin/pip" install -q cmake
    for alt in lightgbm3 perpetual; do
        dir=scripts/bench/gbdt-alternatives/$alt
        target=$PWD/target/scratch/$alt
        rm -rf "$target"
        echo "clean release build of $alt (load: $(cut -d' ' -f1-3 /proc/loadavg)):"
        (cd "$dir" && PATH=$PWD/../../../../$VENV/bin:$PATH CARGO_TARGET_DIR=$target \
            /usr/bin/time -f "  %e s wall, %U s user" cargo build --release -q -j2)
        engines+=("$target/release/bench-$alt $ROWS")
    done
fi

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
    for cmd in "${engines[@]}"; do
        # shellcheck disable=SC2086
        /usr/bin/time -f "  whole process: %e s wall, %U s user, %S s sys" $cmd
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "qtctl train as a whole (dataset build + train_on: fit, calibration, evaluation):"
target/release/examples/train --data "$DATA" --out "$OUT/model.json" --report "$OUT/report.json"
"$VENV/bin/python" -c "
import json; r = json.load(open('$OUT/report.json'))
print(f\"  train_on {r['train_seconds']:.2f} s wall; test AUC buy {r['test']['auc_buy']:.4f} sell {r['test']['auc_sell']:.4f}\")"
