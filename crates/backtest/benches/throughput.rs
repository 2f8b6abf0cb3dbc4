//! Backtest throughput on the shared 5m data (12 symbols × ~88k candles), one thread, for the
//! `momentum` and `gbdt` models. Prints candles per second per core; skips with a message when
//! the data is absent. Data: the folder in `$QT_BENCH_DATA` (scripts/bench.sh points it at the
//! project's shared 12-symbol set).
//!
//! Run: `cargo bench -p qt-backtest --bench throughput` (`QT_BENCH_MODELS=momentum` skips gbdt).

use std::path::PathBuf;
use std::time::Instant;

use qt_backtest::cli::load_data;
use qt_backtest::{Backtest, BacktestConfig, BacktestError, ModelFactory, SymbolSeries};
use qt_models::train::{TrainConfig, train};
use qt_models::{Model, ModelKind, MomentumConfig, MomentumModel, build_model, dataset::Series};

fn data_dir() -> PathBuf {
    std::env::var_os("QT_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn bench(name: &str, series: &[SymbolSeries], factory: &mut ModelFactory<'_>) {
    let bt = match Backtest::new(BacktestConfig::default()) {
        Ok(b) => b,
        Err(e) => return eprintln!("{name}: {e}"),
    };
    let data = series.to_vec(); // the copy is not timed
    let started = Instant::now();
    let out = bt.run(data, factory, &mut |_, _| {});
    let secs = started.elapsed().as_secs_f64();
    match out {
        Ok(o) => println!(
            "backtest {name}: {} candles, {} symbols, {} trades in {secs:.3} s = {:.0} candles/s per core",
            o.candles,
            series.len(),
            o.trades.len(),
            o.candles as f64 / secs
        ),
        Err(e) => eprintln!("{name}: {e}"),
    }
}

fn main() {
    let dir = data_dir();
    if !dir.is_dir() {
        println!(
            "skipping backtest throughput: {} not found (set QT_BENCH_DATA)",
            dir.display()
        );
        return;
    }
    let t = Instant::now();
    let series = match load_data(std::slice::from_ref(&dir), "5m", &[]) {
        Ok(s) => s,
        Err(e) => return println!("skipping backtest throughput: {e:#}"),
    };
    println!(
        "loaded {} series from {} in {:.1} s (not timed below)",
        series.len(),
        dir.display(),
        t.elapsed().as_secs_f64()
    );

    // The floor: the feature engine alone over the same candles (no model, risk or fills).
    let started = Instant::now();
    let mut n = 0u64;
    let mut sink = 0.0f64;
    for s in &series {
        let mut fe = qt_features::FeatureEngine::new(qt_features::FeatureConfig::default());
        for c in &s.candles {
            if let Some(v) = fe.update(c) {
                sink += v.values[0];
            }
            n += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "feature engine alone: {n} candles in {secs:.3} s = {:.0} candles/s per core (checksum {sink:.3})",
        n as f64 / secs
    );

    bench("momentum", &series, &mut |_| {
        MomentumModel::new(MomentumConfig::default(), "bench")
            .map(|m| Box::new(m) as Box<dyn Model>)
            .map_err(|e| BacktestError::Model(e.to_string()))
    });

    if std::env::var("QT_BENCH_MODELS").is_ok_and(|m| !m.contains("gbdt")) {
        return;
    }
    // A GBDT trained on the first 20k candles of two symbols: the point is prediction cost.
    let train_series: Vec<Series> = series
        .iter()
        .take(2)
        .map(|s| Series {
            symbol: s.symbol.clone(),
            interval_ms: 300_000,
            candles: s.candles.iter().take(20_000).copied().collect(),
        })
        .collect();
    let t = Instant::now();
    let artifact = match train(
        &train_series,
        &TrainConfig::new(ModelKind::Gbdt, "bench-gbdt"),
    ) {
        Ok((a, _)) => a,
        Err(e) => return println!("skipping gbdt: training failed: {e}"),
    };
    println!(
        "trained the bench gbdt in {:.1} s (not timed below)",
        t.elapsed().as_secs_f64()
    );
    bench("gbdt", &series, &mut |_| {
        build_model(&artifact).map_err(|e| BacktestError::Model(e.to_string()))
    });
}
