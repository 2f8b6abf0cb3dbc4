//! Feature engine throughput (candles/s), single thread, over real candles.
//! Reads the folder in `$QT_BENCH_DATA` (scripts/bench.sh: the shared 12-symbol set) when set,
//! else the repo's data/klines/5m.
//! Run: `cargo bench -p qt-features --bench feature_engine`.

use std::path::PathBuf;
use std::time::Instant;

use qt_features::{FeatureConfig, batch};

fn main() {
    let dir = std::env::var_os("QT_BENCH_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m"),
        PathBuf::from,
    );
    println!("data: {}", dir.display());
    let t = Instant::now();
    let series = match qt_candles::read_dir(&dir) {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: cannot read {}: {e}", dir.display());
            return;
        }
    };
    let read_s = t.elapsed().as_secs_f64();
    let n: usize = series.iter().map(|(_, c)| c.len()).sum();
    println!(
        "read {} files, {n} candles from {} in {read_s:.2} s ({:.0} candles/s)",
        series.len(),
        dir.display(),
        n as f64 / read_s
    );
    let t = Instant::now();
    let mut produced = 0usize;
    for (file, candles) in &series {
        let f = batch(
            FeatureConfig {
                interval_ms: file.interval_ms,
            },
            candles,
        );
        produced += f.iter().filter(|v| v.is_some()).count();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "feature engine: {n} candles in {s:.2} s = {:.0} candles/s ({:.2} us/candle), {produced} vectors",
        n as f64 / s,
        s * 1e6 / n as f64
    );
}
