//! perpetual (forust's successor) on a `gbdt_rows export` file: both one-vs-rest boosters.
//! perpetual has no tree count, depth or learning rate: it grows trees under a `budget`
//! (given here) and stops by itself; `iteration_limit` caps the trees at GbdtParams' count.

#[path = "../../rows.rs"]
mod rows;

use std::time::Instant;

use perpetual::objective::Objective;
use perpetual::{Matrix, PerpetualBooster};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: bench-perpetual ROWS [BUDGET] [THREADS]");
    let budget: f32 = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(0.5);
    let threads: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(2);
    let (header, nf, fit, test) = rows::read_rows(path);
    let trees = header["params"]["iterations"].as_u64().expect("iterations") as usize;
    let nbins = header["params"]["nbins"].as_u64().expect("nbins") as u16;
    let col_major = |x: &[f64]| {
        let n = x.len() / nf;
        let mut out = vec![0.0; x.len()];
        for (r, row) in x.chunks_exact(nf).enumerate() {
            for (j, v) in row.iter().enumerate() {
                out[j * n + r] = *v;
            }
        }
        out
    };
    let t = Instant::now();
    let xc = col_major(&fit.x);
    let m = Matrix::new(&xc, fit.y.len(), nf);
    let models: Vec<PerpetualBooster> = [1u8, 2]
        .iter()
        .map(|&class| {
            let y: Vec<f64> = fit.y.iter().map(|&l| f64::from(u8::from(l == class))).collect();
            let mut b = PerpetualBooster::default()
                .set_objective(Objective::LogLoss)
                .set_budget(budget)
                .set_max_bin(nbins)
                .set_num_threads(Some(threads))
                .set_iteration_limit(Some(trees));
            b.fit(&m, &y, None, None).expect("fit");
            b
        })
        .collect();
    let fit_s = t.elapsed().as_secs_f64();
    let tc = col_major(&test.x);
    let tm = Matrix::new(&tc, test.y.len(), nf);
    let aucs: Vec<(f64, usize)> = [1u8, 2]
        .iter()
        .zip(&models)
        .map(|(&class, b)| {
            let s = b.predict(&tm, true);
            let pos: Vec<bool> = test.y.iter().map(|&l| l == class).collect();
            (rows::auc(&s, &pos), b.get_prediction_trees().len())
        })
        .collect();
    println!(
        "engine=perpetual budget={budget} rows={} features={nf} trees={}+{} threads={threads} fit_s={fit_s:.3} auc_buy={:.4} auc_sell={:.4}",
        fit.y.len(),
        aucs[0].1,
        aucs[1].1,
        aucs[0].0,
        aucs[1].0
    );
}
