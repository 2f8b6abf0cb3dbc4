//! Benchmark of one full clm cycle (dataset, training, evaluation, challenger and champion
//! backtests on the same out-of-sample window) over 12 symbols x 3 months of 5m candles from
//! the folder in `$QT_BENCH_DATA` (scripts/bench.sh: the repo's `data/spot-10m/5m`, 12 symbols), with the default settings (gbdt 150 trees, depth 5, 2 threads,
//! live exit and risk defaults). Skips with a message when the data is absent.
//!
//! `cargo bench -p clm --bench cycle`

use std::path::PathBuf;
use std::time::Instant;

use clm::Settings;
use clm::cycle::{CycleInput, run_cycle};
use qt_models::dataset::Series;

const DAYS: i64 = 90;

fn main() {
    let dir = std::env::var_os("QT_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_default();
    let Ok(files) = qt_candles::list_kline_files(&dir) else {
        println!(
            "skipped: QT_BENCH_DATA ({}) is not a folder of kline files",
            dir.display()
        );
        return;
    };
    let t = Instant::now();
    let mut series = Vec::new();
    for f in files
        .into_iter()
        .filter(|f| f.interval_ms == 300_000)
        .take(12)
    {
        let Ok(candles) = qt_candles::read_klines(&f.path) else {
            println!("skipped: cannot read {}", f.path.display());
            return;
        };
        let Some(last) = candles.last() else { continue };
        let from = last.open_time - DAYS * 86_400_000;
        let start = candles.partition_point(|c| c.open_time < from);
        series.push(Series {
            symbol: f.symbol,
            interval_ms: 300_000,
            candles: candles[start..].to_vec(),
        });
    }
    if series.len() < 12 {
        println!(
            "skipped: only {} symbols in {}",
            series.len(),
            dir.display()
        );
        return;
    }
    let candles: usize = series.iter().map(|s| s.candles.len()).sum();
    println!(
        "data: {} symbols, {candles} candles ({DAYS} days each), read in {:.2} s",
        series.len(),
        t.elapsed().as_secs_f64()
    );
    // The database side of a cycle: seeding an install and loading the window back.
    match database_figures(&series) {
        Ok((ins, load)) => println!(
            "sqlite: insert {candles} candles {ins:.2} s ({:.0}/s); load the 12 x {DAYS}-day window {load:.2} s",
            candles as f64 / ins
        ),
        Err(e) => println!("sqlite figures failed: {e:#}"),
    }
    let settings = Settings {
        window_days: DAYS as u32,
        ..Settings::default()
    };
    // A first cycle makes the champion; the measured one then backtests both models.
    let run = |version: &str, champion| {
        let t = Instant::now();
        let out = run_cycle(CycleInput {
            version: version.into(),
            series: series.clone(),
            evidence: Vec::new(),
            champion,
            settings: &settings,
            prior_trials: 0,
        });
        (out, t.elapsed().as_secs_f64())
    };
    let (first, secs) = run("bench-1", None);
    let Ok((champion, r1)) = first else {
        println!("first cycle failed: {:?}", first.err());
        return;
    };
    println!(
        "cycle without champion: {secs:.2} s (dataset {:.2}, train {:.2}, backtest {:.2}, walk-forward {:.2}); {} rows",
        r1.timings.dataset, r1.timings.train, r1.timings.backtests, r1.timings.walkforward, r1.rows
    );
    let (second, secs) = run("bench-2", Some(&champion));
    match second {
        Ok((_, r)) => {
            println!(
                "full cycle (both backtests): {secs:.2} s (dataset {:.2}, train {:.2}, evaluation + 2 backtests {:.2}, walk-forward {:.2}); {} rows, oos window {} .. {}",
                r.timings.dataset,
                r.timings.train,
                r.timings.backtests,
                r.timings.walkforward,
                r.rows,
                qt_backtest::dates::format_datetime(r.oos_start_ms),
                qt_backtest::dates::format_datetime(r.oos_end_ms)
            );
            println!(
                "challenger: net {} trades {} dd {:.2}% | champion: net {} trades {} dd {:.2}% | promote {}: {}",
                r.challenger.net_pnl,
                r.challenger.trades,
                r.challenger.max_drawdown_pct * 100.0,
                r.champion
                    .as_ref()
                    .map(|c| c.net_pnl.to_string())
                    .unwrap_or_default(),
                r.champion.as_ref().map_or(0, |c| c.trades),
                r.champion
                    .as_ref()
                    .map_or(0.0, |c| c.max_drawdown_pct * 100.0),
                r.decision.promote,
                r.decision.why_not()
            );
        }
        Err(e) => println!("second cycle failed: {e}"),
    }
}

fn database_figures(series: &[Series]) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = clm::Db::open(&qt_store::sqlite_url(&dir.path().join("clm.db"))).await?;
        let t = Instant::now();
        for s in series {
            db.insert_candles(&s.symbol, &s.candles).await?;
        }
        let ins = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut n = 0;
        for s in db.symbols().await? {
            n += db.candles(&s, 0, i64::MAX).await?.len();
        }
        anyhow::ensure!(n == series.iter().map(|s| s.candles.len()).sum::<usize>());
        Ok((ins, t.elapsed().as_secs_f64()))
    })
}
