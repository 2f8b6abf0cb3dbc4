//! The run's settings (the model each fold trains, the windows, the sweep) and the folds they
//! make.

use qt_models::train::{Decision, TrainConfig};
use qt_models::{EnsembleConfig, ExitGrid, GbdtParams, LabelConfig, ModelKind, MomentumConfig};
use serde::{Deserialize, Serialize};

use crate::BacktestError;
use crate::engine::BacktestConfig;

use super::*;

/// How the model of each fold is trained (the settings clm trains with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// `gbdt` (default), `temporal`, `ensemble`, `meta` (the gbdt filtering the trend rule's
    /// trades), or a rule with nothing to fit: `momentum`, `trend`.
    pub kind: ModelKind,
    /// Candles a training row's trade is followed for its label (see
    /// [`LabelConfig::horizon`]); the labels' exits and costs are the backtest's, so the model
    /// learns the trades the backtest (and exit-brain) will make.
    pub label_horizon: usize,
    /// Share of each training window held out inside it (the validation slice `train_on`
    /// reports on; never the fold's test window). Default 0.2.
    pub validation_fraction: f64,
    pub gbdt: GbdtParams,
    pub momentum: MomentumConfig,
    pub ensemble: EnsembleConfig,
    /// The temporal model's architecture and training (kind `temporal`, and the ensemble's
    /// temporal member).
    pub temporal: qt_models::TemporalParams,
    /// How the gbdt decides: by expected value (default, as clm trains it), with the
    /// backtest's taker fee, slippage and default funding rate as its costs; or `{"target_mix": [buy, sell]}`, or `"fixed_edges"` (those in `gbdt`).
    pub decision: Decision,
    /// The exit plans each fold tries around the backtest's exits, choosing on its validation
    /// slice (deciding by expected value; see [`qt_models::exit_choice`]). Every plan is a
    /// trial of the deflated Sharpe ratio.
    pub exit_grid: ExitGrid,
}

impl Default for ModelSettings {
    fn default() -> Self {
        let t = TrainConfig::new(ModelKind::Gbdt, "");
        Self {
            kind: ModelKind::Gbdt,
            label_horizon: t.labeling.horizon,
            validation_fraction: t.test_fraction,
            gbdt: t.gbdt,
            momentum: t.momentum,
            ensemble: t.ensemble,
            temporal: t.temporal,
            decision: t.decision,
            exit_grid: t.exit_grid,
        }
    }
}

/// A walk-forward run's settings. Every field has a default suited to 5m and 15m candles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkForwardConfig {
    /// Days of candles each fold trains on (rolling); with `anchored`, the first fold's.
    /// Default 60.
    pub train_days: f64,
    /// Days each fold trades out of sample. Default 30 (a monthly refit).
    pub test_days: f64,
    /// Days from one fold's test start to the next; default (`null`) = `test_days`.
    pub step_days: Option<f64>,
    /// Every fold trains from the start of the data (growing window) instead of a fixed-length
    /// window. Default false (rolling).
    pub anchored: bool,
    /// Candles dropped between the end of the training data and the test start, beyond the
    /// purge of the label horizon (features with memory). Default 12.
    pub embargo_candles: usize,
    /// Candles before the first test start fed to the feature engine only. Default 1,000.
    pub warmup_candles: usize,
    /// The last fold is kept only when its test window has at least this many days. Default 7.
    pub min_test_days: f64,
    pub model: ModelSettings,
    /// Exits, limits, sizing, fill model and funding: the same for strategy and baselines.
    pub backtest: BacktestConfig,
    /// Random-entry paths (default 200; the report needs at least 100 to place the strategy).
    pub random_paths: usize,
    /// Seed of the random-entry paths.
    pub seed: u64,
    /// Configurations tried before this run (and not in its sweep) on this data, counted as
    /// trials by the deflated Sharpe ratio. Default 0: this run's configurations only.
    pub prior_trials: usize,
    /// Worker threads (folds, baselines and paths run in parallel). Default 2.
    pub threads: usize,
    /// A grid of backtest settings to try with the same fold models (every combination of
    /// the axes' values is one configuration, and one trial of the deflated Sharpe ratio). The
    /// configuration with the best out-of-sample Sharpe is reported as the strategy — a choice
    /// made on the test windows, which is exactly what the deflated Sharpe ratio and the
    /// probability of backtest overfitting are there to price. Empty: no sweep.
    pub sweep: Vec<SweepAxis>,
}

/// One axis of a sweep: a setting of [`BacktestConfig`] by its dotted path (`min_confidence`,
/// `exits.stop_pct`, `sizing.fixed_notional.margin`, …) and the values to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    pub key: String,
    pub values: Vec<serde_json::Value>,
}

impl SweepAxis {
    /// Parses `key=v1,v2,…` (values as JSON, bare words as strings).
    ///
    /// # Errors
    /// [`BacktestError::Config`] when there is no `=` or no value.
    pub fn parse(text: &str) -> Result<Self, BacktestError> {
        let (key, values) = text.split_once('=').ok_or_else(|| {
            BacktestError::Config(format!("sweep {text:?} is not key=value,value,…"))
        })?;
        let values: Vec<serde_json::Value> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v)))
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            return Err(BacktestError::Config(format!(
                "sweep {text:?} names no key or no value"
            )));
        }
        Ok(Self {
            key: key.trim().to_owned(),
            values,
        })
    }
}

/// Every configuration of a sweep grid over `base`, with its label (`key=value …`).
///
/// # Errors
/// [`BacktestError::Config`] when a key names no setting or a value does not fit it.
pub fn sweep_grid(
    base: &BacktestConfig,
    axes: &[SweepAxis],
) -> Result<Vec<(String, BacktestConfig)>, BacktestError> {
    let root = serde_json::to_value(base).map_err(|e| BacktestError::Config(e.to_string()))?;
    let mut grid: Vec<(Vec<String>, serde_json::Value)> = vec![(Vec::new(), root)];
    for axis in axes {
        let mut next = Vec::new();
        for (labels, v) in &grid {
            for value in &axis.values {
                let mut v = v.clone();
                let mut at = &mut v;
                for part in axis.key.split('.') {
                    at = at.get_mut(part).ok_or_else(|| {
                        BacktestError::Config(format!("sweep key {:?} names no setting", axis.key))
                    })?;
                }
                *at = value.clone();
                let mut labels = labels.clone();
                labels.push(format!("{}={value}", axis.key));
                next.push((labels, v));
            }
        }
        grid = next;
    }
    grid.into_iter()
        .map(|(labels, v)| {
            let mut cfg: BacktestConfig = serde_json::from_value(v)
                .map_err(|e| BacktestError::Config(format!("sweep {}: {e}", labels.join(" "))))?;
            cfg.funding.history = base.funding.history.clone();
            Ok((labels.join(" "), cfg))
        })
        .collect()
}

impl Default for WalkForwardConfig {
    fn default() -> Self {
        Self {
            train_days: 60.0,
            test_days: 30.0,
            step_days: None,
            anchored: false,
            embargo_candles: 12,
            warmup_candles: 1_000,
            min_test_days: 7.0,
            model: ModelSettings::default(),
            backtest: BacktestConfig::default(),
            random_paths: 200,
            seed: 7,
            prior_trials: 0,
            threads: 2,
            sweep: Vec::new(),
        }
    }
}

impl WalkForwardConfig {
    /// The labels every fold's model is trained with: the backtest's exits and costs.
    pub fn labeling(&self) -> LabelConfig {
        self.backtest.labeling(self.model.label_horizon)
    }

    /// How each fold's model is trained (the settings clm trains with), as version `version`.
    pub fn train_config(&self, version: String) -> TrainConfig {
        let m = &self.model;
        let mut tc = TrainConfig::new(m.kind, version);
        tc.labeling = self.labeling();
        tc.test_fraction = m.validation_fraction;
        tc.gbdt = m.gbdt;
        tc.momentum = m.momentum;
        tc.ensemble = m.ensemble;
        tc.temporal = m.temporal.clone();
        tc.decision = m.decision.clone();
        tc.exit_grid = m.exit_grid.clone();
        tc.funding_features = self.backtest.funding_features;
        tc.threads = 1;
        tc
    }

    /// The exit plans each fold tries: trials of the deflated Sharpe ratio, for every
    /// configuration of the sweep.
    pub fn exit_plans(&self) -> usize {
        self.train_config(String::new())
            .exit_candidates()
            .len()
            .max(1)
    }

    /// Checks the windows.
    ///
    /// # Errors
    /// [`BacktestError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), BacktestError> {
        let pos = |v: f64, name: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(BacktestError::Config(format!(
                    "{name} must be positive, not {v}"
                )))
            }
        };
        pos(self.train_days, "train_days")?;
        pos(self.test_days, "test_days")?;
        pos(self.step_days.unwrap_or(self.test_days), "step_days")?;
        pos(self.min_test_days, "min_test_days")?;
        let v = self.model.validation_fraction;
        if !(v > 0.0 && v < 1.0) {
            return Err(BacktestError::Config(format!(
                "validation_fraction must be in (0, 1), not {v}"
            )));
        }
        if self.threads == 0 {
            return Err(BacktestError::Config("threads must be at least 1".into()));
        }
        self.model
            .exit_grid
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))?;
        self.labeling()
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))
    }
}

/// One fold's windows, ms (starts inclusive, ends exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub index: usize,
    pub train_start: i64,
    /// End of the training data: `test_start` minus the embargo. The last `horizon` candles
    /// before it have no label and are purged by the dataset.
    pub train_end: i64,
    pub test_start: i64,
    pub test_end: i64,
}

/// The folds over data spanning `[start, end)` at `interval_ms`.
///
/// # Errors
/// [`BacktestError::Config`] when the data is too short for one fold.
pub fn plan_folds(
    start: i64,
    end: i64,
    interval_ms: i64,
    cfg: &WalkForwardConfig,
) -> Result<Vec<Fold>, BacktestError> {
    cfg.validate()?;
    let days = |d: f64| (d * DAY_MS as f64) as i64 / interval_ms * interval_ms;
    let (train, test) = (days(cfg.train_days), days(cfg.test_days));
    let step = days(cfg.step_days.unwrap_or(cfg.test_days));
    let min_test = days(cfg.min_test_days);
    let gap = i64::try_from(cfg.embargo_candles).unwrap_or(i64::MAX / 4) * interval_ms;
    let mut folds = Vec::new();
    let mut test_start = start + train;
    while test_start < end {
        let test_end = (test_start + test).min(end);
        if test_end - test_start < min_test {
            break;
        }
        folds.push(Fold {
            index: folds.len(),
            train_start: if cfg.anchored {
                start
            } else {
                test_start - train
            },
            train_end: test_start - gap,
            test_start,
            test_end,
        });
        test_start += step;
    }
    if folds.is_empty() {
        return Err(BacktestError::Config(format!(
            "the data spans {:.1} days: too short for {} training days and {} test days",
            (end - start) as f64 / DAY_MS as f64,
            cfg.train_days,
            cfg.min_test_days
        )));
    }
    // Overlapping test windows (step < test) would count the same candles twice.
    for w in folds.windows(2) {
        if w[1].test_start < w[0].test_end {
            return Err(BacktestError::Config(
                "step_days is shorter than test_days: test windows would overlap".into(),
            ));
        }
    }
    Ok(folds)
}
