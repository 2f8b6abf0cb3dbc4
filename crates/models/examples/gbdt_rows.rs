//! The GBDT side-by-side (scripts/bench/gbdt_side_by_side.sh): exports the exact rows
//! `qtctl train` fits, calibrates and tests on, and fits our booster on such a file.
//!
//! ```text
//! gbdt_rows export --data data/futures/5m --out rows.bin     # rows as train_on makes them
//! gbdt_rows fit --rows rows.bin [--threads 2]                # fit time + test AUC per booster
//! ```
//!
//! File layout (little-endian): the line `QTGBDTROWS 1`, one line of JSON header
//! (`features`, `fit`, `calibration`, `test` row counts, the `params` of the run), then for fit,
//! calibration and test in that order: the rows' features row-major as f64, then one label
//! byte per row (0 HOLD, 1 BUY, 2 SELL).

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use qt_features::{FEATURE_NAMES, N_FEATURES};
use qt_models::dataset::Dataset;
use qt_models::metrics::auc;
use qt_models::train::{TrainConfig, row_roles};
use qt_models::{GbdtModel, GbdtParams, ModelKind, SignalAction};

const MAGIC: &str = "QTGBDTROWS 1\n";

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Builds the dataset as `qtctl train` does (default labels, expected-value decision) and
    /// writes its fit, calibration and test rows.
    Export {
        #[arg(long, default_value = "data/futures/5m")]
        data: PathBuf,
        #[arg(long, default_value = "5m")]
        interval: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Fits both one-vs-rest boosters on the fit rows of a file and prints the fit time and
    /// the test AUC of each.
    Fit {
        #[arg(long)]
        rows: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Trees per booster (default: GbdtParams' default).
        #[arg(long)]
        iterations: Option<usize>,
    },
}

struct Part {
    x: Vec<f64>,
    y: Vec<SignalAction>,
}

fn label_byte(a: SignalAction) -> u8 {
    match a {
        SignalAction::Buy => 1,
        SignalAction::Sell => 2,
        _ => 0,
    }
}

fn export(data: &Path, interval: &str, out: &Path) -> anyhow::Result<()> {
    let series = qt_models::cli::load_series(data, interval, &[])?;
    let cfg = TrainConfig::new(ModelKind::Gbdt, "bench");
    let ds = Dataset::build(&series, &cfg.labeling, cfg.threads)?;
    let roles = row_roles(&ds, &cfg)?;
    let header = serde_json::json!({
        "features": FEATURE_NAMES.to_vec(),
        "fit": roles.fit.len(),
        "calibration": roles.calibration.len(),
        "test": roles.split.test.len(),
        "params": cfg.gbdt,
        "data": data.display().to_string(),
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    w.write_all(MAGIC.as_bytes())?;
    writeln!(w, "{header}")?;
    for rows in [&roles.fit, &roles.calibration, &roles.split.test] {
        for &i in rows.iter() {
            for v in ds.features[i] {
                w.write_all(&v.to_le_bytes())?;
            }
        }
        for &i in rows.iter() {
            w.write_all(&[label_byte(ds.labels[i])])?;
        }
    }
    w.flush()?;
    println!(
        "{}: {} fit, {} calibration, {} test rows x {N_FEATURES} features",
        out.display(),
        roles.fit.len(),
        roles.calibration.len(),
        roles.split.test.len()
    );
    Ok(())
}

fn read_rows(path: &Path) -> anyhow::Result<(Part, Part, Part)> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .read_to_end(&mut bytes)?;
    let rest = bytes
        .strip_prefix(MAGIC.as_bytes())
        .context("not a gbdt rows file")?;
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .context("no header line")?;
    let header: serde_json::Value = serde_json::from_slice(&rest[..nl])?;
    let names: Vec<String> = serde_json::from_value(header["features"].clone())?;
    ensure!(
        names == FEATURE_NAMES,
        "the file's features differ from this build's"
    );
    let mut body = &rest[nl + 1..];
    let mut part = |key: &str| -> anyhow::Result<Part> {
        let n = header[key].as_u64().context("row count")? as usize;
        let (xb, tail) = body
            .split_at_checked(n * N_FEATURES * 8)
            .context("file too short")?;
        let (yb, tail) = tail.split_at_checked(n).context("file too short")?;
        body = tail;
        let x = xb
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let y = yb
            .iter()
            .map(|b| match b {
                1 => SignalAction::Buy,
                2 => SignalAction::Sell,
                _ => SignalAction::Hold,
            })
            .collect();
        Ok(Part { x, y })
    };
    let fit = part("fit")?;
    let cal = part("calibration")?;
    let test = part("test")?;
    if !body.is_empty() {
        bail!("{} bytes left over", body.len());
    }
    Ok((fit, cal, test))
}

fn column_major(x: &[f64]) -> Vec<f64> {
    let n = x.len() / N_FEATURES;
    let mut out = vec![0.0; x.len()];
    for (r, row) in x.chunks_exact(N_FEATURES).enumerate() {
        for (j, v) in row.iter().enumerate() {
            out[j * n + r] = *v;
        }
    }
    out
}

fn fit(path: &Path, threads: usize, iterations: Option<usize>) -> anyhow::Result<()> {
    let t = Instant::now();
    let (fit, _cal, test) = read_rows(path)?;
    let read_s = t.elapsed().as_secs_f64();
    let mut params = GbdtParams::default();
    if let Some(n) = iterations {
        params.iterations = n;
    }
    let t = Instant::now();
    let columns = column_major(&fit.x);
    let model = GbdtModel::fit(&columns, &fit.y, params, threads, "bench")?;
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let probs: Vec<(f64, f64)> = test
        .x
        .chunks_exact(N_FEATURES)
        .map(|r| model.probabilities(r))
        .collect();
    let predict_s = t.elapsed().as_secs_f64();
    let side = |a: SignalAction, pick: fn(&(f64, f64)) -> f64| {
        let scores: Vec<f64> = probs.iter().map(pick).collect();
        let pos: Vec<bool> = test.y.iter().map(|l| *l == a).collect();
        auc(&scores, &pos).unwrap_or(f64::NAN)
    };
    println!(
        "engine=qt-models rows={} features={N_FEATURES} trees={} depth={} threads={threads} read_s={read_s:.2} fit_s={fit_s:.3} predict_test_s={predict_s:.3} auc_buy={:.4} auc_sell={:.4}",
        fit.y.len(),
        params.iterations,
        params.max_depth,
        side(SignalAction::Buy, |p| p.0),
        side(SignalAction::Sell, |p| p.1),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Export {
            data,
            interval,
            out,
        } => export(&data, &interval, &out),
        Cmd::Fit {
            rows,
            threads,
            iterations,
        } => fit(&rows, threads, iterations),
    }
}
