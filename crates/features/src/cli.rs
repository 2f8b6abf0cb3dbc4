//! `qtctl features --data FILE --out FILE.csv`: writes every candle of a kline file with its
//! features, for inspection.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::{FEATURE_NAMES, FeatureConfig, batch};

/// Arguments of `qtctl features`.
#[derive(Debug, Clone, clap::Args)]
pub struct FeaturesArgs {
    /// Binance kline file (CSV, plain or gzip), e.g. data/klines/5m/BTCUSDT-5m.csv.gz.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the CSV: the candle's open time and OHLCV, then one column per feature
    /// (empty during warm-up).
    #[arg(long)]
    pub out: PathBuf,
    /// Candle interval (`5m`, `1h`, …); taken from the file name when omitted.
    #[arg(long)]
    pub interval: Option<String>,
}

/// Runs `qtctl features`.
pub fn run(args: &FeaturesArgs) -> anyhow::Result<()> {
    let interval = match &args.interval {
        Some(i) => i.clone(),
        None => {
            let name = args
                .data
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            qt_candles::parse_kline_file_name(name)
                .map(|(_, i)| i)
                .context("cannot tell the interval from the file name; pass --interval")?
        }
    };
    let interval_ms = qt_candles::parse_interval(&interval).context("bad --interval")?;
    let candles = qt_candles::read_klines(&args.data).context("reading candles")?;
    let features = batch(FeatureConfig { interval_ms }, &candles);
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    write!(out, "open_time,open,high,low,close,volume")?;
    for name in FEATURE_NAMES {
        write!(out, ",{name}")?;
    }
    writeln!(out)?;
    for (c, f) in candles.iter().zip(&features) {
        write!(
            out,
            "{},{},{},{},{},{}",
            c.open_time, c.open, c.high, c.low, c.close, c.volume
        )?;
        match f {
            Some(f) => {
                for v in f.values {
                    write!(out, ",{v}")?;
                }
            }
            None => {
                for _ in FEATURE_NAMES {
                    write!(out, ",")?;
                }
            }
        }
        writeln!(out)?;
    }
    out.flush().context("writing the csv")?;
    Ok(())
}
