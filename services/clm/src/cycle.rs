//! One learning cycle, pure CPU work on data already loaded: dataset (features + labels from the
//! live exits over the rolling window, plus realized trade outcomes as repeated rows), training
//! with a purged chronological split, then a backtest of the challenger and of the champion on
//! the same out-of-sample window with the live exit and risk settings, a walk-forward of the
//! training recipe over the window against the baselines, then the gate.
//!
//! Never touches the database, Redis or the clock: the caller passes everything in.

use std::time::Instant;

use qt_backtest::report::{Metrics, compute_metrics};
use qt_backtest::walkforward::run_walkforward;
use qt_backtest::{Backtest, BacktestError, SymbolSeries};
use qt_models::dataset::{Dataset, Series};
use qt_models::exit_choice::train_choosing_exits;
use qt_models::train::{TrainConfig, TrainReport, evaluate_model};
use qt_models::{ModelArtifact, ModelError, SignalAction, SignalMix, build_model};
use serde::{Deserialize, Serialize};

use crate::gate::{Candidate, GateDecision, WalkForwardCard, decide};
use crate::settings::Settings;

/// Why a cycle could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// Not enough data, bad parameters or a model that cannot be built: retrying with the same
    /// data does not help.
    #[error("training failed: {0}")]
    Model(#[from] ModelError),
    #[error("backtest failed: {0}")]
    Backtest(#[from] BacktestError),
}

impl CycleError {
    /// Never: a cycle is deterministic on its input.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// A realized trade as training evidence: the row of `symbol` at `candle_time` (the candle
/// the signal was made on) gets the label its outcome says.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub symbol: String,
    pub candle_time: i64,
    pub label: SignalAction,
}

/// What a cycle needs.
#[derive(Debug)]
pub struct CycleInput<'a> {
    pub version: String,
    pub series: Vec<Series>,
    pub evidence: Vec<Evidence>,
    pub champion: Option<&'a ModelArtifact>,
    pub settings: &'a Settings,
    /// Gate decisions made before this one: each judged a configuration on overlapping data,
    /// so the walk-forward's deflated Sharpe ratio counts them as trials.
    pub prior_trials: usize,
}

/// Wall seconds of each step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub dataset: f64,
    pub train: f64,
    pub backtests: f64,
    #[serde(default)]
    pub walkforward: f64,
}

/// Everything a cycle found, kept with the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleReport {
    pub version: String,
    pub train: TrainReport,
    /// Rows from the window and extra rows from realized outcomes.
    pub rows: usize,
    pub evidence_rows: usize,
    /// The out-of-sample window both backtests ran on.
    pub oos_start_ms: i64,
    pub oos_end_ms: i64,
    pub challenger: Candidate,
    pub champion: Option<Candidate>,
    pub challenger_backtest: Metrics,
    pub champion_backtest: Option<Metrics>,
    /// The walk-forward's card (`None` when it is off); an `Err` says why it could not run.
    #[serde(default)]
    pub walkforward: Option<Result<WalkForwardCard, String>>,
    pub decision: GateDecision,
    pub timings: Timings,
}

/// The walk-forward of the cycle's training recipe over `series` (see
/// [`crate::settings::WalkForwardGate`]).
fn walk_forward(
    s: &Settings,
    series: &[Series],
    prior_trials: usize,
    version: &str,
) -> Result<WalkForwardCard, String> {
    let cfg = s.walkforward_config(prior_trials);
    let data = series
        .iter()
        .map(|x| SymbolSeries {
            symbol: x.symbol.clone(),
            candles: x.candles.clone(),
        })
        .collect();
    let (r, curves) = run_walkforward(data, &cfg, &|_, _, _| {}).map_err(|e| e.to_string())?;
    write_report(s, version, &r, &curves);
    Ok(WalkForwardCard {
        folds: r.folds.len(),
        out_of_sample_start_ms: r.folds.first().map_or(0, |f| f.fold.test_start),
        out_of_sample_end_ms: r.folds.last().map_or(0, |f| f.fold.test_end),
        strategy_return: r.strategy.total_return,
        strategy_trades: r.strategy.metrics.trades,
        strategy_max_drawdown_pct: r.strategy.metrics.max_drawdown_pct,
        strategy_sharpe: r.strategy.metrics.sharpe,
        momentum_return: r.momentum.total_return,
        buy_and_hold_return: r.buy_and_hold.total_return,
        random_median_return: r.random.median_return,
        random_p95_return: r.random.p95_return,
        random_paths: r.random.paths,
        dsr: r.deflated.dsr,
        trials: r.deflated.trials,
        exit_plans: r.deflated.exit_plans,
        verdict: r.verdict,
    })
}

/// The walk-forward's self-contained HTML report, `<artifacts_dir>/reports/<version>/
/// report.html` (portfolio-intelligence serves the newest at `/reports/latest`). A report that
/// cannot be written is logged; the gate does not depend on it.
fn write_report(
    s: &Settings,
    version: &str,
    r: &qt_backtest::walkforward::WalkForwardReport,
    curves: &qt_backtest::walkforward::Curves,
) {
    let dir = s.artifacts_dir.join("reports").join(version);
    let path = dir.join("report.html");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, qt_backtest::wf_report::html(r, curves)));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "walk-forward report not written");
    }
}

fn candidate(version: &str, m: &Metrics, mix: SignalMix) -> Candidate {
    Candidate {
        version: version.to_string(),
        net_pnl: m.net_pnl,
        max_drawdown_pct: m.max_drawdown_pct,
        trades: m.trades,
        win_rate: m.win_rate,
        signal_mix: mix,
    }
}

fn backtest(
    settings: &Settings,
    series: &[Series],
    artifact: &ModelArtifact,
    start_ms: i64,
) -> Result<Metrics, CycleError> {
    let mut cfg = settings.backtest.clone();
    cfg.interval_ms = settings.interval_ms();
    cfg.start_ms = Some(start_ms);
    cfg.end_ms = None;
    let bt = Backtest::new(cfg)?;
    let data = series
        .iter()
        .map(|s| SymbolSeries {
            symbol: s.symbol.clone(),
            candles: s.candles.clone(),
        })
        .collect();
    let mut factory =
        |_: &str| build_model(artifact).map_err(|e| BacktestError::Model(e.to_string()));
    let outcome = bt.run(data, &mut factory, &mut |_, _| {})?;
    Ok(compute_metrics(&outcome))
}

/// Appends `weight` copies of the row each piece of evidence points at, relabelled by its
/// outcome, when the row is in the dataset and before `before_ms` (never in the test period).
fn add_evidence(ds: &mut Dataset, evidence: &[Evidence], weight: usize, before_ms: i64) -> usize {
    let mut added = 0;
    for e in evidence {
        if e.candle_time >= before_ms {
            continue;
        }
        let Some(sym) = ds.symbols.iter().position(|s| s == &e.symbol) else {
            continue;
        };
        let Some(i) = (0..ds.len()).find(|&i| {
            usize::from(ds.symbol_of[i]) == sym && ds.candles[i].open_time == e.candle_time
        }) else {
            continue;
        };
        for _ in 0..weight {
            ds.features.push(ds.features[i]);
            ds.labels.push(e.label);
            ds.outcomes.push(ds.outcomes[i]);
            ds.candles.push(ds.candles[i]);
            ds.symbol_of.push(ds.symbol_of[i]);
            added += 1;
        }
    }
    added
}

/// Runs a whole cycle: returns the challenger's artifact and the report with the decision.
///
/// # Errors
/// [`CycleError`] when the data cannot make a dataset, a split or a model.
pub fn run_cycle(input: CycleInput<'_>) -> Result<(ModelArtifact, CycleReport), CycleError> {
    let s = input.settings;
    let t0 = Instant::now();
    let prepared = Dataset::prepare(&input.series, s.threads)?;
    let t1 = Instant::now();
    let mut cfg = TrainConfig::new(s.kind, input.version.clone());
    cfg.labeling = s.labeling();
    cfg.test_fraction = s.test_fraction;
    cfg.gbdt = s.gbdt;
    cfg.momentum = s.momentum;
    cfg.threads = s.threads;
    cfg.decision = s.decision.clone().unwrap_or_default();
    cfg.exit_grid = s.exit_grid.clone();
    // Each exit plan's dataset: refused without a BUY or a SELL label, then the realized
    // outcomes added before its test period.
    let mut counts: Vec<(qt_models::LabelConfig, usize, usize)> = Vec::new();
    let mut adjust = |ds: &mut Dataset| -> Result<(), ModelError> {
        let rows = ds.len();
        for class in [SignalAction::Buy, SignalAction::Sell] {
            if !ds.labels.contains(&class) {
                // A one-vs-rest booster without a positive row has an infinite base score and
                // cannot be saved: refuse with the reason instead.
                return Err(ModelError::Data(format!(
                    "no {class:?} label in {rows} rows: no trade under the exits nets a \
                     gain after costs in this window"
                )));
            }
        }
        let first_split = ds.split(s.test_fraction, s.label_horizon)?;
        let purge_ms = s.label_horizon as i64 * ds.interval_ms;
        let added = add_evidence(
            ds,
            &input.evidence,
            s.outcome_weight,
            first_split.split_time_ms - purge_ms,
        );
        counts.push((ds.labeling.clone(), rows, added));
        Ok(())
    };
    let chosen = train_choosing_exits(&prepared, &cfg, &mut adjust)?;
    let (artifact, mut train, ds) = (chosen.artifact, chosen.report, chosen.dataset);
    // The kept plan's rows and realized outcomes.
    let (base_rows, evidence_rows) = counts
        .iter()
        .find(|(l, ..)| *l == ds.labeling)
        .map_or((ds.len(), 0), |&(_, r, a)| (r, a));
    let t2 = Instant::now();
    train.train_seconds = Some((t2 - t1).as_secs_f64());
    let split = ds.split(s.test_fraction, s.label_horizon)?;
    let oos_start = split.split_time_ms;
    let oos_end = input
        .series
        .iter()
        .filter_map(|x| x.candles.last().map(|c| c.open_time + ds.interval_ms))
        .max()
        .unwrap_or(oos_start);
    let challenger_bt = backtest(s, &input.series, &artifact, oos_start)?;
    let challenger = candidate(&input.version, &challenger_bt, train.test.signal_mix);
    let (champion, champion_bt) = match input.champion {
        Some(art) => {
            let mut model = build_model(art)?;
            let mix = evaluate_model(model.as_mut(), &ds, &split.test).signal_mix;
            let m = backtest(s, &input.series, art, oos_start)?;
            (Some(candidate(&art.version, &m, mix)), Some(m))
        }
        None => (None, None),
    };
    let t3 = Instant::now();
    let walkforward = s
        .walkforward
        .enabled
        .then(|| walk_forward(s, &input.series, input.prior_trials, &input.version));
    let t4 = Instant::now();
    let decision = decide(
        &s.gate,
        &challenger,
        champion.as_ref(),
        walkforward.as_ref(),
    );
    let report = CycleReport {
        version: input.version,
        train,
        rows: base_rows,
        evidence_rows,
        oos_start_ms: oos_start,
        oos_end_ms: oos_end,
        challenger,
        champion,
        challenger_backtest: challenger_bt,
        champion_backtest: champion_bt,
        walkforward,
        decision,
        timings: Timings {
            dataset: (t1 - t0).as_secs_f64(),
            train: (t2 - t1).as_secs_f64(),
            backtests: (t3 - t2).as_secs_f64(),
            walkforward: (t4 - t3).as_secs_f64(),
        },
    };
    Ok((artifact, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_candles::Candle;
    use qt_models::labels::{Outcome, Outcomes};
    use rust_decimal::Decimal;

    fn dataset() -> Dataset {
        let candle = |t: i64| Candle {
            open_time: t,
            open: Decimal::ONE,
            high: Decimal::ONE,
            low: Decimal::ONE,
            close: Decimal::ONE,
            volume: Decimal::ONE,
            quote_volume: Decimal::ONE,
            trades: 1,
        };
        let mut ds = Dataset {
            symbols: vec!["AAA".into(), "BBB".into()],
            interval_ms: 300_000,
            ..Dataset::default()
        };
        for sym in 0..2u16 {
            for i in 0..10i64 {
                let mut f = [0.0; qt_features::N_FEATURES];
                f[0] = f64::from(sym) * 100.0 + i as f64;
                ds.features.push(f);
                ds.labels.push(SignalAction::Hold);
                ds.outcomes.push(Outcomes {
                    long: Outcome {
                        gross_return: 0.0,
                        held: 1,
                    },
                    short: Outcome {
                        gross_return: 0.0,
                        held: 1,
                    },
                });
                ds.candles.push(candle(i * 300_000));
                ds.symbol_of.push(sym);
            }
        }
        ds
    }

    fn ev(symbol: &str, i: i64, label: SignalAction) -> Evidence {
        Evidence {
            symbol: symbol.into(),
            candle_time: i * 300_000,
            label,
        }
    }

    #[test]
    fn realized_outcomes_repeat_their_row_with_the_outcome_label_before_the_test_period() {
        let mut ds = dataset();
        let evidence = [
            ev("BBB", 3, SignalAction::Buy),
            ev("AAA", 8, SignalAction::Sell), // at the cut-off: not added
            ev("CCC", 3, SignalAction::Sell), // unknown symbol
            ev("AAA", 2, SignalAction::Sell),
        ];
        let added = add_evidence(&mut ds, &evidence, 3, 8 * 300_000);
        assert_eq!(added, 6);
        assert_eq!(ds.len(), 26);
        for k in 20..23 {
            assert_eq!(ds.labels[k], SignalAction::Buy);
            assert_eq!(ds.features[k][0], 103.0, "BBB's row at candle 3");
            assert_eq!(ds.symbol_of[k], 1);
            assert_eq!(ds.candles[k].open_time, 3 * 300_000);
        }
        for k in 23..26 {
            assert_eq!(ds.labels[k], SignalAction::Sell);
            assert_eq!(ds.features[k][0], 2.0);
        }
        assert_eq!(add_evidence(&mut dataset(), &evidence, 0, i64::MAX), 0);
    }
}
