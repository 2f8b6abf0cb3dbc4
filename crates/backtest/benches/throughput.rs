//! Backtest throughput on the repo's 5m data set (12 symbols × ~88k candles, `data/spot-10m/5m`), one thread, for the
//! `momentum` and `gbdt` models. Prints candles per second per core; skips with a message when
//! the data is absent. Data: the folder in `$QT_BENCH_DATA`, by default the repo's `data/spot-10m/5m`.
//!
//! Run: `cargo bench -p qt-backtest --bench throughput` (`QT_BENCH_MODELS=momentum` skips gbdt;
//! `QT_BENCH_REPEAT=N` runs the momentum backtest on prepared features N times,
//! `QT_BENCH_LIMITS=default` or `=no-breaker` only that variant of it, skipping the feature
//! engine alone, the live path and gbdt, e.g. under a profiler).

use std::path::PathBuf;
use std::time::Instant;

use qt_backtest::cli::load_data;
use qt_backtest::{
    Backtest, BacktestConfig, BacktestError, ModelFactory, PreparedSeries, SymbolSeries,
};
use qt_models::train::{TrainConfig, train};
use qt_models::{Model, ModelKind, MomentumConfig, MomentumModel, build_model, dataset::Series};

fn data_dir() -> PathBuf {
    std::env::var_os("QT_BENCH_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/spot-10m/5m"),
        PathBuf::from,
    )
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

/// The feature engine alone over the candles (the floor: no model, risk or fills), then the
/// momentum backtest computing its features as it goes (the live path).
fn floor_and_live(series: &[SymbolSeries]) {
    // The floor: the feature engine alone over the same candles (no model, risk or fills).
    let started = Instant::now();
    let mut n = 0u64;
    let mut sink = 0.0f64;
    for s in series {
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

    bench("momentum", series, &mut |_| {
        MomentumModel::new(MomentumConfig::default(), "bench")
            .map(|m| Box::new(m) as Box<dyn Model>)
            .map_err(|e| BacktestError::Model(e.to_string()))
    });
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

    // QT_BENCH_LIMITS picks one variant of the prepared-features run, for a profiler: the
    // floor and the live path are then skipped too.
    let only = std::env::var("QT_BENCH_LIMITS").ok();
    if only.is_none() {
        floor_and_live(&series);
    }

    // The same momentum run on features computed once beforehand (as a walk-forward's many
    // runs share them); computing them is timed apart.
    let t = Instant::now();
    let prepared = PreparedSeries::prepare_all(&series, 300_000);
    println!(
        "prepared the features once in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    // QT_BENCH_REPEAT=N runs it N times (for a profiler: `perf record` then sees mostly this).
    let repeat: usize = std::env::var("QT_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // Twice: with the default limits (the drawdown breaker trips and every later entry is
    // refused before it is sized) and with the breaker at its loosest, where every signal is
    // sized and checked and trading goes on to the end: the engine's full path.
    let mut loose = BacktestConfig::default();
    loose.limits.max_drawdown_pct = rust_decimal::Decimal::ONE;
    for (key, label, cfg) in [
        ("default", "default limits", BacktestConfig::default()),
        ("no-breaker", "no breaker", loose),
    ] {
        if only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        for _ in 0..repeat {
            let Ok(bt) = Backtest::new(cfg.clone()) else {
                break;
            };
            let started = Instant::now();
            let out = bt.run_prepared(
                &prepared,
                &mut |_| {
                    MomentumModel::new(MomentumConfig::default(), "bench")
                        .map(|m| Box::new(m) as Box<dyn Model>)
                        .map_err(|e| BacktestError::Model(e.to_string()))
                },
                &mut |_, _| {},
            );
            let secs = started.elapsed().as_secs_f64();
            if let Ok(o) = out {
                println!(
                    "backtest momentum on prepared features, {label}: {} candles, {} trades (net {}), {} entries refused {:?}, in {secs:.3} s = {:.0} candles/s per core",
                    o.candles,
                    o.trades.len(),
                    o.trades
                        .iter()
                        .map(|t| t.net_pnl)
                        .sum::<rust_decimal::Decimal>(),
                    o.rejections.values().sum::<u64>(),
                    o.rejections,
                    o.candles as f64 / secs
                );
            }
        }
    }

    if only.is_some() || std::env::var("QT_BENCH_MODELS").is_ok_and(|m| !m.contains("gbdt")) {
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
