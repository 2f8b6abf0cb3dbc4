//! LightGBM through the `lightgbm3` crate on a `gbdt_rows export` file: both one-vs-rest
//! boosters with the project's GbdtParams, fit time and test AUC.

#[path = "../../rows.rs"]
mod rows;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: bench-lightgbm3 ROWS [THREADS]");
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);
    let (header, nf, fit, test) = rows::read_rows(path);
    let p = &header["params"];
    let depth = p["max_depth"].as_u64().expect("depth");
    let subsample = p["subsample"].as_f64().expect("subsample");
    let params = serde_json::json!({
        "objective": "binary",
        "num_iterations": p["iterations"],
        "max_depth": depth,
        "num_leaves": 1u64 << depth,
        "learning_rate": p["learning_rate"],
        "max_bin": p["nbins"],
        "min_sum_hessian_in_leaf": p["min_leaf_weight"],
        "min_data_in_leaf": 1,
        "lambda_l2": p["l2"],
        "bagging_fraction": subsample,
        "bagging_freq": if subsample < 1.0 { 1 } else { 0 },
        "num_threads": threads,
        "seed": p["seed"],
        "deterministic": true,
        "force_row_wise": true,
        "verbose": -1,
    });
    let t = Instant::now();
    let models: Vec<_> = [1u8, 2]
        .iter()
        .map(|&class| {
            let y: Vec<f32> = fit.y.iter().map(|&l| f32::from(u8::from(l == class))).collect();
            let d = lightgbm3::Dataset::from_slice(&fit.x, &y, nf as i32, true).expect("dataset");
            lightgbm3::Booster::train(d, &params).expect("train")
        })
        .collect();
    let fit_s = t.elapsed().as_secs_f64();
    let aucs: Vec<f64> = [1u8, 2]
        .iter()
        .zip(&models)
        .map(|(&class, m)| {
            let s = m.predict(&test.x, nf as i32, true).expect("predict");
            let pos: Vec<bool> = test.y.iter().map(|&l| l == class).collect();
            rows::auc(&s, &pos)
        })
        .collect();
    println!(
        "engine=lightgbm3 rows={} features={nf} trees={} depth={depth} threads={threads} fit_s={fit_s:.3} auc_buy={:.4} auc_sell={:.4}",
        fit.y.len(),
        p["iterations"],
        aucs[0],
        aucs[1]
    );
}
