//! `qtctl backtest` and `qtctl goal`: clap argument structs and their runners (the lead wires
//! them into qtctl).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use qt_candles::{Candle, list_kline_files, parse_interval, parse_kline_file_name, read_klines};
use qt_models::{Model, ModelArtifact, MomentumConfig, MomentumModel, build_model};
use rust_decimal::Decimal;

use crate::dates::parse_date_ms;
use crate::engine::{Backtest, BacktestConfig, ModelFactory, PreparedSeries, SymbolSeries};
use crate::goal::{assess, render};
use crate::report::{Metrics, compute_metrics, summary, write_report};
use crate::{BacktestError, Sizing};

/// `qtctl backtest`: run a strategy over kline files.
#[derive(Debug, Clone, clap::Args)]
pub struct BacktestArgs {
    /// Kline files (`BTCUSDT-5m.csv.gz`, Binance's monthly `BTCUSDT-5m-2023-03.csv`, …) or
    /// folders of them.
    #[arg(required = true)]
    pub data: Vec<PathBuf>,
    /// `momentum` (the baseline rule with default thresholds) or the path of a model artifact
    /// JSON (momentum, gbdt or ensemble, as written by `qtctl train`).
    #[arg(long, default_value = "momentum")]
    pub strategy: String,
    /// First day traded, `YYYY-MM-DD` (UTC) or ms; earlier candles only warm up the features.
    #[arg(long)]
    pub from: Option<String>,
    /// Day after the last one traded, `YYYY-MM-DD` (UTC) or ms (exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Only these symbols (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Candle interval of the files to use.
    #[arg(long, default_value = "5m")]
    pub interval: String,
    /// A JSON `BacktestConfig` (limits, exits, sizing, fill model, filters); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Margin per trade (fixed-notional sizing); the notional is margin × leverage.
    #[arg(long)]
    pub margin: Option<Decimal>,
    /// Leverage of fixed-notional sizing.
    #[arg(long)]
    pub leverage: Option<u32>,
    /// Smallest model confidence that opens a position.
    #[arg(long)]
    pub min_confidence: Option<f64>,
    /// Folder for trades.csv, equity.csv, metrics.json, equity.svg and report.html.
    #[arg(long, default_value = "backtest-report")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Folder of `SYMBOL-fundingRate.csv` files (Binance's format): funding is charged by it,
    /// and a model artifact trained with funding inputs (`qtctl train --funding`) reads them
    /// from it. Without it: the default rate, and such a model is refused.
    #[arg(long)]
    pub funding: Option<PathBuf>,
    /// Random-entry paths run beside the strategy (same exits, sizing, limits, costs and trade
    /// rate; only the entries are random), to place it in their distribution in `report.html`.
    /// At least 100 for a percentile worth reading; 0: none.
    #[arg(long, default_value_t = 200)]
    pub random_paths: usize,
    /// Seed of the random-entry paths.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Worker threads for the random-entry paths.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// `qtctl goal`: is a profit target realistic, given a backtest?
#[derive(Debug, Clone, clap::Args)]
pub struct GoalArgs {
    /// Profit target in the quote asset (USDT).
    #[arg(long)]
    pub target: Decimal,
    /// Time window, hours.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// A backtest's `metrics.json`, or the report folder holding it.
    #[arg(long, default_value = "backtest-report")]
    pub report: PathBuf,
    /// The leverage cap to judge "more size" against.
    #[arg(long, default_value_t = 10)]
    pub max_leverage: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads the candles of files and folders, one series per symbol (several files of one symbol
/// are merged, sorted and de-duplicated by open time).
pub fn load_data(
    paths: &[PathBuf],
    interval: &str,
    symbols: &[String],
) -> anyhow::Result<Vec<SymbolSeries>> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for p in paths {
        if p.is_dir() {
            for f in list_kline_files(p).with_context(|| format!("listing {}", p.display()))? {
                if f.interval == interval {
                    files.push((f.symbol, f.path));
                }
            }
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let (symbol, iv) =
                parse_kline_file_name(name).with_context(|| format!("naming {}", p.display()))?;
            if iv != interval {
                bail!("{} holds {iv} candles, not {interval}", p.display());
            }
            files.push((symbol, p.clone()));
        }
    }
    let mut by_symbol: BTreeMap<String, Vec<Candle>> = BTreeMap::new();
    for (symbol, path) in files {
        if !symbols.is_empty() && !symbols.iter().any(|s| s.eq_ignore_ascii_case(&symbol)) {
            continue;
        }
        let candles = read_klines(&path).with_context(|| format!("reading {}", path.display()))?;
        by_symbol.entry(symbol).or_default().extend(candles);
    }
    if by_symbol.is_empty() {
        bail!("no {interval} kline files found in {paths:?}");
    }
    Ok(by_symbol
        .into_iter()
        .map(|(symbol, mut candles)| {
            candles.sort_by_key(|c| c.open_time);
            candles.dedup_by_key(|c| c.open_time);
            SymbolSeries { symbol, candles }
        })
        .collect())
}

/// Builds a per-symbol model factory from `--strategy`.
pub fn model_factory(strategy: &str) -> anyhow::Result<Box<ModelFactory<'static>>> {
    if strategy == "momentum" {
        return Ok(Box::new(|_| {
            MomentumModel::new(MomentumConfig::default(), "momentum-default")
                .map(|m| Box::new(m) as Box<dyn Model>)
                .map_err(|e| BacktestError::Model(e.to_string()))
        }));
    }
    let path = Path::new(strategy);
    if !path.exists() {
        bail!(
            "strategy {strategy:?} is neither `momentum` nor a model artifact file (train one with `qtctl train`)"
        );
    }
    let artifact =
        ModelArtifact::load(path).with_context(|| format!("loading model {}", path.display()))?;
    Ok(Box::new(move |_| {
        build_model(&artifact).map_err(|e| BacktestError::Model(e.to_string()))
    }))
}

fn progress_bar(quiet: bool) -> impl FnMut(u64, u64) {
    let tty = std::io::stderr().is_terminal();
    move |done: u64, total: u64| {
        if quiet || total < 200_000 {
            return;
        }
        let pct = done * 100 / total.max(1);
        let filled = (pct / 4) as usize;
        let bar = format!(
            "[{}{}] {pct:3}% {done}/{total} candles",
            "#".repeat(filled),
            "-".repeat(25 - filled)
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{bar}")
        } else {
            writeln!(err, "{bar}")
        };
        if done >= total && tty {
            let _ = writeln!(err);
        }
    }
}

/// Builds the run configuration from the flags (and `--config`).
pub fn config_from_args(args: &BacktestArgs) -> anyhow::Result<BacktestConfig> {
    let mut cfg: BacktestConfig = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => BacktestConfig::default(),
    };
    cfg.interval_ms =
        parse_interval(&args.interval).with_context(|| format!("interval {}", args.interval))?;
    let date = |s: &Option<String>, what: &str| -> anyhow::Result<Option<i64>> {
        s.as_deref()
            .map(|v| parse_date_ms(v).with_context(|| format!("--{what} {v:?} is not YYYY-MM-DD")))
            .transpose()
    };
    if let Some(v) = date(&args.from, "from")? {
        cfg.start_ms = Some(v);
    }
    if let Some(v) = date(&args.to, "to")? {
        cfg.end_ms = Some(v);
    }
    if args.margin.is_some() || args.leverage.is_some() {
        let (m0, l0) = match &cfg.sizing {
            Sizing::FixedNotional { margin, leverage } => (*margin, *leverage),
            Sizing::RiskPerTrade { leverage, .. } | Sizing::Kelly { leverage, .. } => {
                (Decimal::from(250), *leverage)
            }
        };
        cfg.sizing = Sizing::FixedNotional {
            margin: args.margin.unwrap_or(m0),
            leverage: args.leverage.unwrap_or(l0),
        };
    }
    if let Some(c) = args.min_confidence {
        cfg.min_confidence = c;
    }
    Ok(cfg)
}

/// Runs `qtctl backtest`: loads the data, runs the strategy and its random-entry paths on the
/// same prepared candles, writes the report and prints a summary.
pub fn run_backtest(args: BacktestArgs) -> anyhow::Result<()> {
    let mut cfg = config_from_args(&args)?;
    anyhow::ensure!(args.threads >= 1, "--threads must be at least 1");
    if let Some(d) = &args.funding {
        crate::funding::load_funding_dir(d, &mut cfg.funding)
            .with_context(|| format!("reading funding history in {}", d.display()))?;
    }
    let path = std::path::Path::new(&args.strategy);
    // The exits the strategy's model was trained for: the random entries trade them too.
    let mut model_exits = None;
    if path.is_file() {
        let artifact = ModelArtifact::load(path)
            .with_context(|| format!("loading model {}", path.display()))?;
        if artifact.funding_features {
            anyhow::ensure!(
                !cfg.funding.history.is_empty(),
                "model {} was trained with funding inputs: pass --funding DIR",
                path.display()
            );
            cfg.funding_features = true;
        }
        model_exits = artifact.exits().cloned();
    }
    let series = load_data(&args.data, &args.interval, &args.symbols)?;
    let mut factory = model_factory(&args.strategy)?;
    let bt = Backtest::new(cfg.clone())?;
    let started = std::time::Instant::now();
    let prepared =
        PreparedSeries::prepare_all_with(&series, cfg.interval_ms, &cfg.context_inputs());
    let outcome = bt.run_prepared(&prepared, &mut *factory, &mut progress_bar(args.quiet))?;
    let secs = started.elapsed().as_secs_f64();
    let m = compute_metrics(&outcome);
    let title = format!("backtest {}", args.strategy);
    let files = write_report(&args.out, &outcome, &m, &title)?;
    // The traded window: from the open of the first candle on the curve to the end of the last.
    let (from, to) = (
        outcome
            .equity
            .first()
            .map_or(0, |p| p.time_ms - cfg.interval_ms + 1),
        outcome.equity.last().map_or(0, |p| p.time_ms + 1),
    );
    let hold = crate::walkforward::buy_and_hold(&series, &cfg, from, to);
    let strategy_return = if m.initial_equity > Decimal::ZERO {
        crate::charts::f((m.final_equity - m.initial_equity) / m.initial_equity)
    } else {
        0.0
    };
    let random = if args.random_paths > 0 {
        let r_started = std::time::Instant::now();
        let settings = crate::walkforward::RandomSettings {
            paths: args.random_paths,
            seed: args.seed,
            threads: args.threads,
        };
        let exits = model_exits.clone();
        let r = crate::walkforward::run_random(
            &prepared,
            &cfg,
            (from, to),
            &outcome,
            strategy_return,
            settings,
            &|entries| crate::walkforward::with_exits(exits.clone(), entries),
            &|_, _| {},
        )?;
        if !args.quiet {
            eprintln!(
                "{} random-entry paths in {:.2} s",
                args.random_paths,
                r_started.elapsed().as_secs_f64()
            );
        }
        Some(r.baseline)
    } else {
        None
    };
    let candles: Vec<crate::charts::ChartSeries> = series
        .iter()
        .map(|s| {
            crate::charts::chart_series(
                &s.symbol,
                &s.candles,
                cfg.interval_ms,
                (from, to),
                crate::walkforward::CHART_BARS,
            )
        })
        .collect();
    let html_path = args.out.join("report.html");
    let html = crate::html::backtest_page(
        &title,
        &m,
        &crate::html::ReportCharts {
            curves: vec![
                ("strategy", &outcome.equity),
                ("buy & hold (equal weight)", &hold.equity),
            ],
            initial_equity: m.initial_equity,
            trades: &outcome.trades,
            candles: &candles,
            random: random.as_ref().map(|r| (r, strategy_return)),
        },
    );
    std::fs::write(&html_path, html).with_context(|| format!("writing {}", html_path.display()))?;
    println!("{}", summary(&m));
    if let Some(r) = &random {
        println!(
            "random entries: {} paths at p = {:.5} per flat candle (median {} trades): median {}, \
             95th percentile {}; the strategy ({}) is at the {:.0}th percentile",
            r.paths,
            r.entry_probability,
            r.median_trades,
            crate::html::pct(r.median_return),
            crate::html::pct(r.p95_return),
            crate::html::pct(strategy_return),
            r.strategy_percentile * 100.0
        );
    }
    println!(
        "{} candles in {secs:.2} s ({:.0} candles/s)",
        outcome.candles,
        outcome.candles as f64 / secs.max(1e-9)
    );
    println!(
        "report: {}, {}, {}, {}, {}",
        files.trades_csv.display(),
        files.equity_csv.display(),
        files.metrics_json.display(),
        files.equity_svg.display(),
        html_path.display()
    );
    Ok(())
}

/// Reads a backtest's metrics from `metrics.json` or the folder holding it.
pub fn load_metrics(path: &Path) -> anyhow::Result<Metrics> {
    let file = if path.is_dir() {
        path.join("metrics.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {} (run `qtctl backtest` first)", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))
}

/// Runs `qtctl goal`.
pub fn run_goal(args: GoalArgs) -> anyhow::Result<()> {
    if !(args.hours.is_finite() && args.hours > 0.0) {
        bail!("--hours must be positive");
    }
    let m = load_metrics(&args.report)?;
    let a = assess(&m, args.target, args.hours, args.max_leverage);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&a)?);
    } else {
        print!("{}", render(&a));
    }
    Ok(())
}

/// `qtctl walkforward`: train and trade fold by fold, against the baselines.
#[derive(Debug, Clone, clap::Args)]
pub struct WalkForwardArgs {
    /// Kline files or folders of them (every symbol at once).
    #[arg(required = true)]
    pub data: Vec<PathBuf>,
    /// Candle interval of the files to use.
    #[arg(long, default_value = "5m")]
    pub interval: String,
    /// Only these symbols (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// A `WalkForwardConfig` as JSON or TOML (by extension): windows, model, backtest,
    /// baselines, sweep; the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model trained in each fold: gbdt, temporal, ensemble, meta, momentum or trend.
    #[arg(long)]
    pub kind: Option<String>,
    /// Days of each training window.
    #[arg(long)]
    pub train_days: Option<f64>,
    /// Days of each test window.
    #[arg(long)]
    pub test_days: Option<f64>,
    /// Days between test starts (default: the test window).
    #[arg(long)]
    pub step_days: Option<f64>,
    /// Train every fold from the start of the data (growing window).
    #[arg(long)]
    pub anchored: bool,
    /// Candles between the training data and the test start, beyond the label horizon.
    #[arg(long)]
    pub embargo: Option<usize>,
    /// Random-entry paths (at least 100 to place the strategy in their distribution).
    #[arg(long)]
    pub random_paths: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Configurations tried on this data before this run, counted by the deflated Sharpe.
    #[arg(long)]
    pub prior_trials: Option<usize>,
    /// A sweep axis `key=v1,v2,…` over backtest settings (repeatable), e.g.
    /// `min_confidence=0.5,0.6,0.7` or `exits.stop_pct=1.5,2,2.5`.
    #[arg(long)]
    pub sweep: Vec<String>,
    /// Folder of `SYMBOL-fundingRate.csv` files (Binance's format). Default: a `funding`
    /// folder beside the data folder, when there is one.
    #[arg(long)]
    pub funding: Option<PathBuf>,
    /// Funding rate per 8 h where no history covers the time (default 0.0001).
    #[arg(long)]
    pub funding_rate: Option<Decimal>,
    /// Worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Folder for report.json, folds.csv, equity.csv, trades.csv and report.html.
    #[arg(long, default_value = "walkforward-report")]
    pub out: PathBuf,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Builds the walk-forward configuration from `--config` and the flags.
pub fn walkforward_config(
    args: &WalkForwardArgs,
) -> anyhow::Result<crate::walkforward::WalkForwardConfig> {
    use crate::walkforward::{SweepAxis, WalkForwardConfig};
    let mut cfg: WalkForwardConfig = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            if p.extension().is_some_and(|e| e == "toml") {
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            } else {
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
        }
        None => WalkForwardConfig::default(),
    };
    cfg.backtest.interval_ms =
        parse_interval(&args.interval).with_context(|| format!("interval {}", args.interval))?;
    if let Some(k) = &args.kind {
        cfg.model.kind =
            serde_json::from_value(serde_json::Value::from(k.as_str())).with_context(|| {
                format!("--kind {k:?} is not gbdt, ensemble, temporal, meta, momentum or trend")
            })?;
    }
    let set = |dst: &mut f64, v: Option<f64>| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(&mut cfg.train_days, args.train_days);
    set(&mut cfg.test_days, args.test_days);
    if args.step_days.is_some() {
        cfg.step_days = args.step_days;
    }
    cfg.anchored |= args.anchored;
    if let Some(e) = args.embargo {
        cfg.embargo_candles = e;
    }
    if let Some(n) = args.random_paths {
        cfg.random_paths = n;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(n) = args.prior_trials {
        cfg.prior_trials = n;
    }
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    if let Some(r) = args.funding_rate {
        cfg.backtest.funding.default_rate = r;
    }
    for s in &args.sweep {
        cfg.sweep.push(SweepAxis::parse(s)?);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The funding folder: `--funding`, else a `funding` folder beside a data folder.
fn funding_dir(args: &WalkForwardArgs) -> Option<PathBuf> {
    if let Some(d) = &args.funding {
        return Some(d.clone());
    }
    args.data.iter().find_map(|p| {
        let dir = if p.is_dir() { p.as_path() } else { p.parent()? };
        let f = dir.parent()?.join("funding");
        f.is_dir().then_some(f)
    })
}

/// Runs `qtctl walkforward`: loads the data, runs the folds and the baselines, writes the
/// report files and prints where the strategy stands.
pub fn run_walkforward(args: WalkForwardArgs) -> anyhow::Result<()> {
    let mut cfg = walkforward_config(&args)?;
    let series = load_data(&args.data, &args.interval, &args.symbols)?;
    let funding = match funding_dir(&args) {
        Some(d) => {
            let n = crate::funding::load_funding_dir(&d, &mut cfg.backtest.funding)
                .with_context(|| format!("reading funding history in {}", d.display()))?;
            format!("funding history of {n} symbol(s) from {}", d.display())
        }
        None => format!(
            "no funding history: {} every {} h",
            cfg.backtest.funding.default_rate, cfg.backtest.funding.interval_hours
        ),
    };
    anyhow::ensure!(
        !cfg.backtest.funding_features || !cfg.backtest.funding.history.is_empty(),
        "backtest.funding_features needs a funding history (--funding DIR)"
    );
    if !args.quiet {
        eprintln!(
            "walk-forward over {} symbol(s), {}; {}",
            series.len(),
            args.interval,
            funding
        );
    }
    let quiet = args.quiet;
    let tty = std::io::stderr().is_terminal();
    let progress = move |phase: &str, done: usize, total: usize| {
        if quiet || total == 0 {
            return;
        }
        let filled = done * 25 / total;
        let line = format!(
            "{phase:>9} [{}{}] {done}/{total}",
            "#".repeat(filled),
            "-".repeat(25 - filled)
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}")
        } else if done == total {
            writeln!(err, "{line}")
        } else {
            Ok(())
        };
        if tty && done == total {
            let _ = writeln!(err);
        }
    };
    let (report, curves) = crate::walkforward::run_walkforward(series, &cfg, &progress)?;
    let files = crate::wf_report::write(&args.out, &report, &curves)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::wf_report::summary(&report));
        println!("report: {}", files.join(", "));
    }
    Ok(())
}
