//! Training time on 300k samples and prediction time per row.
//! Reads ../shared/data/klines/5m (12 symbols × ~88k candles) and skips with a message when it
//! is absent. Run: `cargo bench -p qt-models --bench train_predict`.

use std::path::PathBuf;
use std::time::Instant;

use qt_features::FeatureVector;
use qt_models::dataset::Dataset;
use qt_models::{BarrierConfig, GbdtModel, GbdtParams, Model};

const SAMPLES: usize = 300_000;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/klines/5m");
    if !dir.is_dir() {
        println!("skipped: {} not found", dir.display());
        return;
    }
    let t = Instant::now();
    let series = match qt_models::cli::load_series(&dir, "5m", &[]) {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: {e:#}");
            return;
        }
    };
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ds = match Dataset::build(&series, &BarrierConfig::default(), 2) {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    println!(
        "read {} series in {read_s:.2} s; dataset of {} rows (features + labels, 2 threads) in {:.2} s",
        series.len(),
        ds.len(),
        t.elapsed().as_secs_f64()
    );
    // 300k rows spread over the whole span and every symbol.
    let step = (ds.len() / SAMPLES).max(1);
    let rows: Vec<usize> = (0..ds.len()).step_by(step).take(SAMPLES).collect();
    let columns = ds.columns(&rows);
    let labels: Vec<_> = rows.iter().map(|&i| ds.labels[i]).collect();
    let params = GbdtParams::default();
    for threads in [2, 1] {
        let t = Instant::now();
        let model = match GbdtModel::fit(&columns, &labels, params, threads, "bench") {
            Ok(m) => m,
            Err(e) => {
                println!("training failed: {e}");
                return;
            }
        };
        println!(
            "train: {} rows x {} features, 2 one-vs-rest models x {} trees depth {}, {threads} thread(s): {:.2} s",
            rows.len(),
            qt_features::N_FEATURES,
            params.iterations,
            params.max_depth,
            t.elapsed().as_secs_f64()
        );
        if threads == 2 {
            predict_bench(model, &ds);
        }
    }
}

fn predict_bench(mut model: GbdtModel, ds: &Dataset) {
    let n = 20_000.min(ds.len());
    let mut times = Vec::with_capacity(n);
    let mut buys = 0usize;
    for i in 0..n {
        let k = (i * 7919) % ds.len();
        let fv = FeatureVector {
            open_time: ds.candles[k].open_time,
            values: ds.features[k],
        };
        let t = Instant::now();
        let s = model.predict(&fv, &ds.candles[k]);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        buys += usize::from(s.action == qt_models::SignalAction::Buy);
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "predict (gbdt, both models, one row, 1 thread): p50 {:.2} us, p99 {:.2} us, max {:.2} us over {n} rows ({buys} BUY)",
        q(0.5),
        q(0.99),
        q(1.0)
    );
}
