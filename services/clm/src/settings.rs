//! clm's settings: the `[clm]` table or `QT_CLM__*` variables.

use std::path::PathBuf;

use qt_backtest::BacktestConfig;
use qt_models::train::Decision;
use qt_models::{ExitGrid, GbdtParams, LabelConfig, ModelKind, MomentumConfig};
use serde::{Deserialize, Serialize};

use crate::gate::GateConfig;
use crate::monitor::MonitorConfig;

/// Everything clm can be told. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// SQLite file used when `QT_DATABASE_URL` is not set.
    pub sqlite_path: PathBuf,
    /// Kline files (`SYMBOL-5m.csv[.gz]`) loaded into the database at start; empty = none.
    pub seed_dir: Option<PathBuf>,
    /// The shared directory where artifacts and `registry.json` are written; every service
    /// that loads a model must see it at the same path.
    pub artifacts_dir: PathBuf,
    /// Hours between two scheduled retrains (default 24).
    pub retrain_every_hours: f64,
    /// New samples (closed candles since the last training's data, plus closed trades) needed
    /// before a scheduled retrain runs (default 100).
    pub min_new_samples: u64,
    /// Days of candles the training window covers (rolling; default 30).
    pub window_days: u32,
    /// Candle interval (default `5m`).
    pub interval: String,
    /// Model family trained: gbdt (default), temporal, ensemble or momentum.
    pub kind: ModelKind,
    pub gbdt: GbdtParams,
    pub momentum: MomentumConfig,
    /// Candles a row's trade is followed for its label (default 160, past the 12 h time stop
    /// at 5m); the labels' exits and costs are `backtest`'s, the live ones.
    pub label_horizon: usize,
    /// How the trained gbdt decides; absent: by expected value after the backtest's costs
    /// (an `Option` so a file's choice replaces the default instead of being merged into it).
    pub decision: Option<Decision>,
    /// The exit plans tried around `backtest.exits`, the one kept chosen on the validation
    /// slice (deciding by expected value); every plan is a trial of the gate's deflated
    /// Sharpe ratio. Default: distances ×0.75 / ×1 / ×1.5, trailing on and off.
    pub exit_grid: ExitGrid,
    /// Share of the window held out (the out-of-sample backtest period; default 0.2).
    pub test_fraction: f64,
    /// Threads for training (default 2).
    pub threads: usize,
    /// The live exit, risk and sizing settings the two backtests run with.
    pub backtest: BacktestConfig,
    pub gate: GateConfig,
    /// The walk-forward the gate requires a challenger's training recipe to pass.
    pub walkforward: WalkForwardGate,
    pub monitor: MonitorConfig,
    /// Copies of a row added for each realized trade outcome (default 3; 0 = ignore outcomes).
    pub outcome_weight: usize,
    /// Versions kept in the registry (default 10; the champion is always kept).
    pub keep_versions: usize,
    /// Minutes before a failed run is tried again (default 60; never later than a period).
    pub retry_failed_minutes: i64,
    /// Seconds between two looks at the schedule (default 5).
    pub tick_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sqlite_path: PathBuf::from("data/state/clm.db"),
            seed_dir: Some(PathBuf::from("data/klines/5m")),
            artifacts_dir: PathBuf::from("data/models"),
            retrain_every_hours: 24.0,
            min_new_samples: 100,
            window_days: 30,
            interval: "5m".into(),
            kind: ModelKind::Gbdt,
            gbdt: GbdtParams::default(),
            momentum: MomentumConfig::default(),
            label_horizon: LabelConfig::default().horizon,
            decision: None,
            exit_grid: ExitGrid::default(),
            test_fraction: 0.2,
            threads: 2,
            backtest: BacktestConfig::default(),
            gate: GateConfig::default(),
            walkforward: WalkForwardGate::default(),
            monitor: MonitorConfig::default(),
            outcome_weight: 3,
            keep_versions: 10,
            retry_failed_minutes: 60,
            tick_seconds: 5,
        }
    }
}

/// The walk-forward of the gate: the window's data in rolling folds, each trained with the
/// cycle's settings and traded out of sample with the live exits, limits and costs, beside the
/// momentum rule, buy-and-hold and random entries
/// ([`qt_backtest::walkforward::run_walkforward`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkForwardGate {
    /// Run it and require it (default true). Off, the gate judges the one out-of-sample
    /// window only.
    pub enabled: bool,
    /// Days each fold trains on (default 14).
    pub train_days: f64,
    /// Days each fold trades out of sample (default 4; a 30-day window gives 4 folds).
    pub test_days: f64,
    /// Candles between a fold's training data and its test start (default 12).
    pub embargo_candles: usize,
    /// Candles fed to the feature engine only before the first test start (default 300).
    pub warmup_candles: usize,
    /// Random-entry paths (default 200).
    pub random_paths: usize,
}

impl Default for WalkForwardGate {
    fn default() -> Self {
        Self {
            enabled: true,
            train_days: 14.0,
            test_days: 4.0,
            embargo_candles: 12,
            warmup_candles: 300,
            random_paths: 200,
        }
    }
}

impl Settings {
    /// The walk-forward the gate runs, after `prior_trials` configurations were judged on
    /// overlapping data (each counted by the deflated Sharpe ratio).
    pub fn walkforward_config(
        &self,
        prior_trials: usize,
    ) -> qt_backtest::walkforward::WalkForwardConfig {
        use qt_backtest::walkforward::{ModelSettings, WalkForwardConfig};
        let w = &self.walkforward;
        let mut backtest = self.backtest.clone();
        backtest.interval_ms = self.interval_ms();
        backtest.start_ms = None;
        backtest.end_ms = None;
        WalkForwardConfig {
            train_days: w.train_days,
            test_days: w.test_days,
            step_days: None,
            anchored: false,
            embargo_candles: w.embargo_candles,
            warmup_candles: w.warmup_candles,
            min_test_days: w.test_days / 2.0,
            model: ModelSettings {
                kind: self.kind,
                label_horizon: self.label_horizon,
                validation_fraction: self.test_fraction,
                gbdt: self.gbdt,
                momentum: self.momentum,
                decision: self.decision.clone().unwrap_or_default(),
                exit_grid: self.exit_grid.clone(),
                ..ModelSettings::default()
            },
            backtest,
            random_paths: w.random_paths,
            prior_trials,
            threads: self.threads,
            ..WalkForwardConfig::default()
        }
    }

    /// The database URL: `QT_DATABASE_URL` when set, else the SQLite file.
    pub fn database_url(&self) -> String {
        qt_store::url_from_env(&self.sqlite_path)
    }

    /// Retrain period in ms.
    pub fn period_ms(&self) -> i64 {
        (self.retrain_every_hours * 3_600_000.0) as i64
    }

    /// Interval in ms (`5m` → 300,000); falls back to 5 minutes on a bad name.
    pub fn interval_ms(&self) -> i64 {
        qt_candles::parse_interval(&self.interval).unwrap_or(300_000)
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.retrain_every_hours.is_nan() || self.retrain_every_hours <= 0.0 {
            return Err("retrain_every_hours must be positive".into());
        }
        if qt_candles::parse_interval(&self.interval).is_err() {
            return Err(format!(
                "interval {:?} is not a Binance interval",
                self.interval
            ));
        }
        if self.window_days == 0 {
            return Err("window_days must be at least 1".into());
        }
        if self.test_fraction.is_nan() || self.test_fraction <= 0.0 || self.test_fraction >= 0.9 {
            return Err("test_fraction must be in (0, 0.9)".into());
        }
        if self.retry_failed_minutes < 1 {
            return Err("retry_failed_minutes must be at least 1".into());
        }
        if self.keep_versions < 2 {
            return Err(
                "keep_versions must be at least 2 (champion and one to roll back to)".into(),
            );
        }
        if self.walkforward.enabled {
            let w = &self.walkforward;
            if w.train_days + w.test_days / 2.0 > f64::from(self.window_days) {
                return Err(format!(
                    "walkforward.train_days {} and half of test_days {} must fit in window_days {}",
                    w.train_days, w.test_days, self.window_days
                ));
            }
            self.walkforward_config(0)
                .validate()
                .map_err(|e| format!("walkforward: {e}"))?;
        }
        self.labeling().validate().map_err(|e| e.to_string())
    }

    /// Exit plans each training tries (each a trial of the deflated Sharpe ratio).
    pub fn exit_plans(&self) -> usize {
        self.walkforward_config(0).exit_plans()
    }

    /// The labels training uses: the live exits and costs of `backtest`.
    pub fn labeling(&self) -> LabelConfig {
        self.backtest.labeling(self.label_horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporal_kind_is_accepted_and_reaches_the_gates_walk_forward() {
        let mut v = serde_json::to_value(Settings::default()).expect("encodes");
        v["kind"] = serde_json::json!("temporal");
        let s: Settings = serde_json::from_value(v).expect("a temporal kind parses");
        assert_eq!(s.kind, ModelKind::Temporal);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.walkforward_config(0).model.kind, ModelKind::Temporal);
    }
}
