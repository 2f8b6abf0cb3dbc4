//! `qtctl train`: reads kline files, trains a model, writes the artifact and a JSON report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::ModelKind;
use crate::dataset::{Dataset, Series};
use crate::exit_choice::train_choosing_exits_lean;
use crate::train::{Decision, TrainConfig};

/// Arguments of `qtctl train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Folder of kline files named SYMBOL-INTERVAL.csv[.gz].
    #[arg(long, default_value = "data/klines/5m")]
    pub data: PathBuf,
    /// Only these symbols (comma-separated); all files of the interval when omitted.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Candle interval of the files to use.
    #[arg(long, default_value = "5m")]
    pub interval: String,
    /// Model family: gbdt, momentum, temporal (a causal convolution network over the last 32
    /// candles' features), ensemble (gbdt, then momentum as fallback), trend (time-series
    /// momentum on hourly closes, a rule) or meta (the gbdt filtering trend's trades).
    #[arg(long, alias = "model", default_value = "gbdt", value_parser = parse_kind)]
    pub kind: ModelKind,
    /// Where to write the model artifact (one JSON file).
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the JSON training report.
    #[arg(long)]
    pub report: PathBuf,
    /// Artifact version; `<kind>-<last training candle open time>` when omitted.
    #[arg(long)]
    pub version: Option<String>,
    /// Share of the time span held out for testing.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Trees per one-vs-rest model.
    #[arg(long, default_value_t = 150)]
    pub iterations: usize,
    #[arg(long, default_value_t = 5)]
    pub max_depth: usize,
    #[arg(long, default_value_t = 0.1)]
    pub learning_rate: f32,
    /// Fixed edge `P(long wins) - P(short wins)` at which gbdt says BUY (and the reverse for
    /// SELL), instead of deciding by expected value.
    #[arg(long, conflicts_with_all = ["target_buy", "target_sell"])]
    pub edge: Option<f64>,
    /// Share of BUY decisions the gbdt edges are set to on the training rows, instead of
    /// deciding by expected value (a diagnostic: a signal mix is not a reason to trade).
    #[arg(long, requires = "target_sell")]
    pub target_buy: Option<f64>,
    /// Share of SELL decisions, with `--target-buy`.
    #[arg(long, requires = "target_buy")]
    pub target_sell: Option<f64>,
    /// Momentum thresholds on the 24h change (fractions).
    #[arg(long, default_value_t = 0.01)]
    pub momentum_buy: f64,
    #[arg(long, default_value_t = -0.01, allow_hyphen_values = true)]
    pub momentum_sell: f64,
    /// A JSON file of exit settings (exit-brain's `exits`, the same fields) the labels' trades
    /// are run with; the live defaults when omitted.
    #[arg(long)]
    pub exits: Option<PathBuf>,
    /// Most candles a row's trade is followed for its label.
    #[arg(long, default_value_t = crate::LabelConfig::default().horizon)]
    pub horizon: usize,
    /// Passes over the training rows of the temporal model.
    #[arg(long, default_value_t = crate::TemporalParams::default().epochs)]
    pub epochs: usize,
    /// Factors the exits' distances are scaled by in the grid of exit plans tried on the
    /// validation slice (each plan a trial; `1` alone with `--exit-trailing` empty: the exits
    /// as given).
    #[arg(long, value_delimiter = ',', default_values_t = crate::ExitGrid::default().scales)]
    pub exit_scales: Vec<rust_decimal::Decimal>,
    /// The trailing stop on and/or off in the grid (`true,false`); `keep`: as the exits have it.
    #[arg(long, value_delimiter = ',', default_value = "true,false", value_parser = parse_trailing)]
    pub exit_trailing: Vec<Option<bool>>,
    /// Folder of Binance `SYMBOL-fundingRate.csv` files: the funding inputs (last published
    /// rate, its 3-day mean and 30-day z-score, hours to the next funding) are read from it,
    /// each row seeing only the rates published by its candle's close; the artifact records
    /// that it needs them. Without it those inputs are missing in every row.
    #[arg(long)]
    pub funding: Option<PathBuf>,
    /// Cores to use.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

fn parse_trailing(s: &str) -> Result<Option<bool>, String> {
    match s {
        "true" | "on" => Ok(Some(true)),
        "false" | "off" => Ok(Some(false)),
        "keep" => Ok(None),
        _ => Err(format!("{s:?} is not true, false or keep")),
    }
}

fn parse_kind(s: &str) -> Result<ModelKind, String> {
    match s {
        "gbdt" => Ok(ModelKind::Gbdt),
        "momentum" => Ok(ModelKind::Momentum),
        "ensemble" => Ok(ModelKind::Ensemble),
        "temporal" => Ok(ModelKind::Temporal),
        "trend" => Ok(ModelKind::Trend),
        "meta" => Ok(ModelKind::Meta),
        _ => Err(format!(
            "unknown model kind {s:?} (gbdt, momentum, ensemble, temporal, trend, meta)"
        )),
    }
}

/// Reads the series of a kline folder for one interval (optionally only some symbols).
pub fn load_series(
    dir: &std::path::Path,
    interval: &str,
    symbols: &[String],
) -> anyhow::Result<Vec<Series>> {
    let files =
        qt_candles::list_kline_files(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut out = Vec::new();
    for f in files {
        if f.interval != interval
            || (!symbols.is_empty() && !symbols.iter().any(|s| s.eq_ignore_ascii_case(&f.symbol)))
        {
            continue;
        }
        let candles = qt_candles::read_klines(&f.path)
            .with_context(|| format!("reading {}", f.path.display()))?;
        out.push(Series {
            symbol: f.symbol,
            interval_ms: f.interval_ms,
            candles,
        });
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no {interval} kline files in {}",
        dir.display()
    );
    Ok(out)
}

/// Runs `qtctl train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let series = load_series(&args.data, &args.interval, &args.symbols)?;
    let mut cfg = TrainConfig::new(args.kind, args.version.clone().unwrap_or_default());
    cfg.test_fraction = args.test_fraction;
    cfg.threads = args.threads;
    cfg.gbdt.iterations = args.iterations;
    cfg.gbdt.max_depth = args.max_depth;
    cfg.gbdt.learning_rate = args.learning_rate;
    cfg.temporal.epochs = args.epochs;
    // By expected value unless a fixed edge or a target mix is asked for.
    if let Some(t) = args.edge {
        cfg.gbdt.buy_edge = t;
        cfg.gbdt.sell_edge = t;
        cfg.decision = Decision::FixedEdges;
    }
    if let (Some(b), Some(s)) = (args.target_buy, args.target_sell) {
        cfg.decision = Decision::TargetMix(b, s);
    }
    cfg.momentum.buy_threshold = args.momentum_buy;
    cfg.momentum.sell_threshold = args.momentum_sell;
    if let Some(path) = &args.exits {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        cfg.labeling.exits = serde_json::from_str(&text)
            .with_context(|| format!("{}: not exit settings", path.display()))?;
    }
    cfg.labeling.horizon = args.horizon;
    cfg.exit_grid = crate::ExitGrid {
        scales: args.exit_scales.clone(),
        trailing: args.exit_trailing.iter().flatten().copied().collect(),
        ..crate::ExitGrid::default()
    };
    let context = match &args.funding {
        Some(dir) => {
            let history = qt_candles::read_funding_dir(dir)
                .with_context(|| format!("reading funding history in {}", dir.display()))?;
            anyhow::ensure!(
                !history.is_empty(),
                "--funding {}: no SYMBOL-fundingRate.csv files",
                dir.display()
            );
            cfg.funding_features = true;
            crate::dataset::funding_inputs(&history)
        }
        None => qt_features::ContextInputs::default(),
    };
    let prepared = Dataset::prepare_with_context(&series, cfg.threads, &context)
        .context("computing the features")?;
    if cfg.version.is_empty() {
        let ds = Dataset::labelled(&prepared, &cfg.labeling).context("labelling the rows")?;
        let split = ds
            .split(cfg.test_fraction, cfg.labeling.horizon)
            .context("splitting the dataset")?;
        let end = split
            .train
            .iter()
            .map(|&i| ds.candles[i].open_time)
            .max()
            .unwrap_or(0);
        cfg.version = format!("{}-{end}", args.kind_name());
    }
    let started = Instant::now();
    let chosen = train_choosing_exits_lean(&prepared, &cfg).context("training")?;
    let (artifact, mut report) = (chosen.artifact, chosen.report);
    report.train_seconds = Some(started.elapsed().as_secs_f64());
    artifact.save(&args.out).context("writing the artifact")?;
    let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
    std::fs::write(&args.report, json)
        .with_context(|| format!("writing {}", args.report.display()))?;
    if let Some(x) = &report.exits {
        for (k, t) in x.trials.iter().enumerate() {
            println!(
                "exits {}{}: {}",
                t.label,
                if k == x.chosen { " (kept)" } else { "" },
                match (&t.error, t.margin) {
                    (Some(e), _) => format!("not trained: {e}"),
                    (None, Some(m)) => format!(
                        "margin {:.4}, {} validation trades netting {:+.4}, excess t {:.2}",
                        m, t.trades, t.net_return, t.excess_t
                    ),
                    (None, None) => "no margin passed on validation".to_string(),
                }
            );
        }
    }
    println!(
        "trained {} on {} rows, tested on {}: accuracy {:.3}, signal mix buy {:.2} sell {:.2} hold {:.2}; artifact {}",
        report.version,
        report.training_range.train_rows,
        report.training_range.test_rows,
        report.test.accuracy,
        report.test.signal_mix.buy,
        report.test.signal_mix.sell,
        report.test.signal_mix.hold,
        args.out.display()
    );
    Ok(())
}

impl TrainArgs {
    fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}
