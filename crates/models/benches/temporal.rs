//! The temporal model: training time on a folder of kline files and the time of one decision
//! (one symbol, one candle: normalize the vector, push it into the symbol's ring, run the
//! network over the 32-candle window, apply the expected-value rule), as trading-bot and the
//! backtester call it (`Model::predict_for`, every symbol through one instance).
//!
//! Reads `$QT_BENCH_DATA`, else the repo's `data/futures/5m` (8 symbols). Run:
//! `cargo bench -p qt-models --bench temporal`. `QT_BENCH_EPOCHS` overrides the epochs;
//! `QT_BENCH_VARIANTS="chunk=16,batch=32,lr=0.001,channels=8,decay=0.001,epochs=2;…"` trains
//! each listed variant of the settings once (2 threads) and prints its test AUC, instead of the
//! timing runs.

use std::path::PathBuf;
use std::time::Instant;

use qt_features::FeatureVector;
use qt_models::dataset::Dataset;
use qt_models::train::{TrainConfig, train_on};
use qt_models::{LabelConfig, ModelKind, build_model};

fn main() {
    let dir = std::env::var_os("QT_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/futures/5m"));
    let series = match qt_models::cli::load_series(&dir, "5m", &[]) {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: {e:#}");
            return;
        }
    };
    let t = Instant::now();
    let ds = match Dataset::build(&series, &LabelConfig::default(), 2) {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    println!(
        "{}: {} series, dataset of {} rows in {:.2} s",
        dir.display(),
        series.len(),
        ds.len(),
        t.elapsed().as_secs_f64()
    );
    let mut cfg = TrainConfig::new(ModelKind::Temporal, "bench");
    if let Ok(variants) = std::env::var("QT_BENCH_VARIANTS") {
        for v in variants.split(';').filter(|v| !v.trim().is_empty()) {
            let mut c = cfg.clone();
            for kv in v.split(',') {
                let (k, x) = kv.split_once('=').unwrap_or((kv, ""));
                let f: f64 = x.trim().parse().unwrap_or(f64::NAN);
                let t = &mut c.temporal;
                match k.trim() {
                    "chunk" => t.chunk = f as usize,
                    "batch" => t.batch = f as usize,
                    "lr" => t.learning_rate = f as f32,
                    "channels" => t.channels = f as usize,
                    "decay" => t.weight_decay = f as f32,
                    "epochs" => t.epochs = f as usize,
                    "seed" => t.seed = f as u64,
                    other => println!("unknown setting {other:?}"),
                }
            }
            let t = Instant::now();
            match train_on(&ds, &c) {
                Ok((_, r)) => println!(
                    "variant {v}: {:.1} s, test AUC buy {:.4} sell {:.4}, margin {:?}, test mix {:.3}/{:.3}/{:.3}, epochs {:?}",
                    t.elapsed().as_secs_f64(),
                    r.test.auc_buy.unwrap_or(f64::NAN),
                    r.test.auc_sell.unwrap_or(f64::NAN),
                    r.ev.as_ref().and_then(|e| e.margin),
                    r.test.signal_mix.buy,
                    r.test.signal_mix.sell,
                    r.test.signal_mix.hold,
                    r.epochs
                        .iter()
                        .map(|e| (e.fit * 1e4).round() / 1e4)
                        .zip(r.epochs.iter().map(|e| (e.validation * 1e4).round() / 1e4))
                        .collect::<Vec<_>>()
                ),
                Err(e) => println!("variant {v}: {e}"),
            }
        }
        return;
    }
    step_bench();
    if let Some(n) = std::env::var("QT_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.temporal.epochs = n;
    }
    for threads in [2, 1] {
        cfg.threads = threads;
        let t = Instant::now();
        let (artifact, report) = match train_on(&ds, &cfg) {
            Ok(r) => r,
            Err(e) => {
                println!("training failed: {e}");
                return;
            }
        };
        println!(
            "train ({threads} thread(s)): {:.2} s wall for {} epochs over {} training rows (fit, calibration, evaluation); test AUC buy {:?} sell {:?}; epochs {:?}",
            t.elapsed().as_secs_f64(),
            cfg.temporal.epochs,
            report.training_range.train_rows,
            report.test.auc_buy,
            report.test.auc_sell,
            report.epochs
        );
        if threads == 1 {
            break;
        }
        predict_bench(&artifact, &ds);
    }
}

fn predict_bench(artifact: &qt_models::ModelArtifact, ds: &Dataset) {
    let mut model = match build_model(artifact) {
        Ok(m) => m,
        Err(e) => {
            println!("cannot build: {e}");
            return;
        }
    };
    // Every row in time order, each symbol's history in the one instance, as live.
    let rows = ds.time_ordered(&(0..ds.len()).collect::<Vec<_>>());
    let mut times = Vec::with_capacity(rows.len());
    let mut trades = 0usize;
    let started = Instant::now();
    for &k in &rows {
        let fv = FeatureVector {
            open_time: ds.candles[k].open_time,
            values: ds.features[k],
        };
        let symbol = &ds.symbols[usize::from(ds.symbol_of[k])];
        let t = Instant::now();
        let s = model.predict_for(symbol, &fv, &ds.candles[k]);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        trades += usize::from(s.action != qt_models::SignalAction::Hold);
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "predict (temporal, one symbol, one candle, 1 thread): p50 {:.2} us, p99 {:.2} us, max {:.2} us, mean {:.2} us over {} candles of {} symbols ({trades} entries)",
        q(0.5),
        q(0.99),
        q(1.0),
        total * 1e6 / times.len() as f64,
        times.len(),
        ds.symbols.len()
    );
}

/// One optimizer step of the network alone on 8 chunks of 31 + 128 steps (1,024 trained
/// positions), and one forward pass over a 32-step window: the figures compared with candle.
fn step_bench() {
    use qt_models::temporal::net::{Adam, Net, Rng, Trace, bce};
    let n_in = qt_features::N_FEATURES;
    let mut net = Net::new(n_in, 16, &[1, 2, 4, 8, 16], 1);
    let mut rng = Rng::new(2);
    let len = 31 + 128;
    let xs: Vec<Vec<f32>> = (0..8)
        .map(|_| {
            (0..len * n_in)
                .map(|_| rng.unit() as f32 * 2.0 - 1.0)
                .collect()
        })
        .collect();
    let mut w = net.flat();
    let mut adam = Adam::new(w.len(), 0.002, 1e-4);
    let mut trace = Trace::default();
    let steps = 200;
    let mut t0 = Instant::now();
    for k in 0..steps + 10 {
        if k == 10 {
            t0 = Instant::now();
        }
        let mut grad = vec![0.0f32; w.len()];
        for x in &xs {
            net.forward(x, len, &mut trace);
            let d: Vec<f32> = trace
                .logits
                .iter()
                .enumerate()
                .map(|(i, &l)| {
                    if i >= 31 * 2 {
                        bce(l, (i % 3 == 0) as u8 as f32).1 / 2048.0
                    } else {
                        0.0
                    }
                })
                .collect();
            net.backward(x, &trace, &d, &mut grad);
        }
        adam.step(&mut w, &grad);
        net.set_flat(&w);
    }
    let per = t0.elapsed().as_secs_f64() / steps as f64;
    println!(
        "hand-written train step (8 chunks x 128 outputs = 1024 positions, {} weights, 1 thread): {:.3} ms, {:.0} positions/s",
        net.parameters(),
        per * 1e3,
        1024.0 / per
    );
    let x = &xs[0][..32 * n_in];
    let mut times = Vec::with_capacity(2000);
    for i in 0..2100 {
        let t = Instant::now();
        net.forward(x, 32, &mut trace);
        std::hint::black_box(trace.logits[63]);
        if i >= 100 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "hand-written forward, one 32-step window: p50 {:.1} us, p99 {:.1} us",
        times[times.len() / 2],
        times[times.len() * 99 / 100]
    );
}
