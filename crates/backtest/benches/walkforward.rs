//! The whole walk-forward on the repo's 12 spot symbols × 10 months of 5m candles
//! (`data/spot-10m/5m`): monthly refits of the default gbdt, the strategy, momentum,
//! buy-and-hold and 200 random-entry paths, every fold and run in parallel on `threads` (2).
//! Prints the wall time of each phase and the candles per second of the backtests after
//! training.
//!
//! Run: `cargo bench -p qt-backtest --bench walkforward` (`QT_BENCH_DATA=DIR` for another
//! folder, `QT_BENCH_PATHS=100` for fewer random paths).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use qt_backtest::cli::load_data;
use qt_backtest::walkforward::{WalkForwardConfig, run_walkforward};

fn main() {
    let dir = std::env::var_os("QT_BENCH_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/spot-10m/5m"),
        PathBuf::from,
    );
    if !dir.is_dir() {
        println!(
            "skipping walk-forward bench: {} not found (set QT_BENCH_DATA)",
            dir.display()
        );
        return;
    }
    let series = match load_data(std::slice::from_ref(&dir), "5m", &[]) {
        Ok(s) => s,
        Err(e) => return println!("skipping walk-forward bench: {e:#}"),
    };
    let mut cfg = WalkForwardConfig::default();
    if let Some(n) = std::env::var("QT_BENCH_PATHS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.random_paths = n;
    }
    let phases: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let progress = |phase: &str, done: usize, total: usize| {
        if done == total
            && let Ok(mut p) = phases.lock()
        {
            p.push((phase.to_owned(), started.elapsed().as_secs_f64()));
        }
    };
    let out = run_walkforward(series, &cfg, &progress);
    let secs = started.elapsed().as_secs_f64();
    match out {
        Ok((r, _)) => {
            // momentum, each configuration of the strategy, and the random paths
            let per_run = r.strategy.metrics.candles;
            let runs = (r.random.paths + 1 + r.sweep.as_ref().map_or(1, |s| s.configurations.len()))
                as u64;
            println!(
                "walk-forward: {} folds, {} symbols, {} random paths in {secs:.1} s on {} threads",
                r.folds.len(),
                r.symbols.len(),
                r.random.paths,
                cfg.threads
            );
            let mut trained_at = 0.0;
            if let Ok(p) = phases.lock() {
                let mut last = 0.0;
                for (name, t) in p.iter() {
                    println!("  {name} done at {t:.1} s (+{:.1} s)", t - last);
                    if name == "train" {
                        trained_at = *t;
                    }
                    last = *t;
                }
            }
            // The backtests run after the folds' models are trained: their rate is over that
            // part of the run only.
            let backtest_secs = (secs - trained_at).max(1e-9);
            println!(
                "  backtests: {runs} runs × {per_run} candles in {backtest_secs:.1} s after \
                 training = {:.0} candles/s over both cores",
                (runs * per_run) as f64 / backtest_secs
            );
        }
        Err(e) => println!("walk-forward failed: {e}"),
    }
}
