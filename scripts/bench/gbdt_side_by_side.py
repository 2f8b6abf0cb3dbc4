#!/usr/bin/env python3
"""Fits XGBoost (`hist`) or LightGBM on the rows `gbdt_rows export` wrote (the exact fit and
test rows of `qtctl train`) with the settings of our GbdtParams, and prints the fit time of
both one-vs-rest boosters and their test AUC in the same one-line format as `gbdt_rows fit`.

    python gbdt_side_by_side.py --rows rows.bin --engine xgboost [--threads 2]

Run through scripts/bench/gbdt_side_by_side.sh, which makes the venv and the rows file.
"""

import argparse
import json
import time

import numpy as np

MAGIC = b"QTGBDTROWS 1\n"


def read_rows(path):
    raw = open(path, "rb").read()
    if not raw.startswith(MAGIC):
        raise SystemExit(f"{path}: not a gbdt rows file")
    nl = raw.index(b"\n", len(MAGIC))
    header = json.loads(raw[len(MAGIC) : nl])
    nf = len(header["features"])
    off = nl + 1
    parts = {}
    for key in ("fit", "calibration", "test"):
        n = header[key]
        x = np.frombuffer(raw, dtype="<f8", count=n * nf, offset=off).reshape(n, nf)
        off += n * nf * 8
        y = np.frombuffer(raw, dtype=np.uint8, count=n, offset=off)
        off += n
        parts[key] = (x, y)
    if off != len(raw):
        raise SystemExit(f"{path}: {len(raw) - off} bytes left over")
    return header, parts


def auc(scores, positive):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(positive, scores)


def fit_xgboost(x, targets, p, threads):
    import xgboost as xgb

    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": p["max_depth"],
        "eta": p["learning_rate"],
        "max_bin": p["nbins"],
        "min_child_weight": p["min_leaf_weight"],
        "lambda": p["l2"],
        "alpha": 0.0,
        "gamma": 0.0,
        "subsample": p["subsample"],
        "nthread": threads,
        "seed": p["seed"],
    }
    models = []
    for y in targets:
        d = xgb.DMatrix(x, label=y, nthread=threads)
        models.append(xgb.train(params, d, num_boost_round=p["iterations"]))
    return lambda m, xt: m.predict(xgb.DMatrix(xt, nthread=threads)), models


def fit_lightgbm(x, targets, p, threads):
    import lightgbm as lgb

    params = {
        "objective": "binary",
        "max_depth": p["max_depth"],
        "num_leaves": 2 ** p["max_depth"],
        "learning_rate": p["learning_rate"],
        "max_bin": p["nbins"],
        "min_sum_hessian_in_leaf": p["min_leaf_weight"],
        "min_data_in_leaf": 1,
        "lambda_l2": p["l2"],
        "bagging_fraction": p["subsample"],
        "bagging_freq": 1 if p["subsample"] < 1.0 else 0,
        "num_threads": threads,
        "seed": p["seed"],
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    models = []
    for y in targets:
        d = lgb.Dataset(x, label=y, params={"max_bin": p["nbins"], "verbose": -1})
        models.append(lgb.train(params, d, num_boost_round=p["iterations"]))
    return lambda m, xt: m.predict(xt, num_threads=threads), models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True)
    ap.add_argument("--engine", choices=["xgboost", "lightgbm"], required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int)
    a = ap.parse_args()
    t = time.perf_counter()
    header, parts = read_rows(a.rows)
    read_s = time.perf_counter() - t
    p = dict(header["params"])
    if a.iterations:
        p["iterations"] = a.iterations
    x, y = parts["fit"]
    xt, yt = parts["test"]
    targets = [(y == 1).astype(np.float64), (y == 2).astype(np.float64)]
    fit = fit_xgboost if a.engine == "xgboost" else fit_lightgbm
    t = time.perf_counter()
    predict, models = fit(x, targets, p, a.threads)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = [predict(m, xt) for m in models]
    predict_s = time.perf_counter() - t
    print(
        f"engine={a.engine} rows={len(y)} features={x.shape[1]} trees={p['iterations']} "
        f"depth={p['max_depth']} threads={a.threads} read_s={read_s:.2f} fit_s={fit_s:.3f} "
        f"predict_test_s={predict_s:.3f} auc_buy={auc(scores[0], yt == 1):.4f} "
        f"auc_sell={auc(scores[1], yt == 2):.4f}"
    )


if __name__ == "__main__":
    main()
