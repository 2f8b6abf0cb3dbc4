//! Training time on 300k samples and prediction time per row.
//! Reads the folder in `$QT_BENCH_DATA` (scripts/bench.sh: the repo's `data/spot-10m/5m`, 12 symbols × ~88k
//! candles) and skips with a message when it is not set or absent. Run: `cargo bench -p qt-models --bench train_predict`.

use std::path::PathBuf;
use std::time::Instant;

use qt_features::FeatureVector;
use qt_models::dataset::Dataset;
use qt_models::{GbdtModel, GbdtParams, LabelConfig, Model};

const SAMPLES: usize = 300_000;

fn main() {
    let dir = std::env::var_os("QT_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_default();
    if !dir.is_dir() {
        println!(
            "skipped: QT_BENCH_DATA ({}) is not a folder of kline files",
            dir.display()
        );
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
    let ds = match Dataset::build(&series, &LabelConfig::default(), 2) {
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
    let mut params = GbdtParams::default();
    // Overrides to compare settings: QT_BENCH_ITERATIONS, QT_BENCH_SUBSAMPLE.
    if let Some(n) = std::env::var("QT_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        params.iterations = n;
    }
    if let Some(x) = std::env::var("QT_BENCH_SUBSAMPLE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        params.subsample = x;
    }
    for threads in [2, 1] {
        let t = Instant::now();
        let cpu = cpu_seconds();
        let model = match GbdtModel::fit(&columns, &labels, params, threads, "bench") {
            Ok(m) => m,
            Err(e) => {
                println!("training failed: {e}");
                return;
            }
        };
        println!(
            "train: {} rows x {} features, 2 one-vs-rest models x {} trees depth {} subsample {}, {threads} thread(s): {:.2} s wall, {:.2} s CPU",
            rows.len(),
            qt_features::N_FEATURES,
            params.iterations,
            params.max_depth,
            params.subsample,
            t.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
        if threads == 2 {
            predict_bench(model, &ds);
        }
    }
}

fn predict_bench(mut model: GbdtModel, ds: &Dataset) {
    let n = 20_000.min(ds.len());
    let picks: Vec<usize> = (0..n).map(|i| (i * 7919) % ds.len()).collect();
    // The path `Model::predict` takes: the compiled flat trees.
    let mut times = Vec::with_capacity(n);
    let mut buys = 0usize;
    let started = Instant::now();
    for &k in &picks {
        let fv = FeatureVector {
            open_time: ds.candles[k].open_time,
            values: ds.features[k],
        };
        let t = Instant::now();
        let s = model.predict(&fv, &ds.candles[k]);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        buys += usize::from(s.action == qt_models::SignalAction::Buy);
    }
    let total = started.elapsed().as_secs_f64();
    report(
        &format!(
            "predict (gbdt compiled = Model::predict, compiled {})",
            model.is_compiled()
        ),
        &mut times,
        total,
        &format!("{buys} BUY"),
    );
    // The same rows through forust's own tree walk (the path before the flat trees).
    times.clear();
    let mut sink = 0.0;
    let started = Instant::now();
    for &k in &picks {
        let t = Instant::now();
        let (b, s) = model.probabilities_tree_walk(&ds.features[k]);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        sink += b - s;
    }
    let total = started.elapsed().as_secs_f64();
    report(
        "predict (gbdt, forust tree walk)",
        &mut times,
        total,
        &format!("checksum {sink:.3}"),
    );
}

fn report(what: &str, times: &mut [f64], total_s: f64, note: &str) {
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "{what}, both models, one row, 1 thread: p50 {:.2} us, p99 {:.2} us, max {:.2} us, mean {:.2} us over {} rows ({note})",
        q(0.5),
        q(0.99),
        q(1.0),
        total_s * 1e6 / times.len() as f64,
        times.len()
    );
}

/// User + system CPU time of this process (Linux /proc), to tell work from waiting on a
/// shared machine; NaN elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses): utime is field 14, stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // rest starts at field 3 (state), so field n is at index n - 3; clock ticks are 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}
