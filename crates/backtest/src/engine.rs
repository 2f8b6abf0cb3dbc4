//! The event loop: every symbol's candles merged by open time, each candle through the live
//! feature engine and model, the risk guard, the exit plan and the fill model.

mod config;
mod outcome;
mod run;
mod series;

use qt_models::Model;
use qt_risk::RiskGuard;
use rust_decimal::Decimal;

use crate::BacktestError;

pub use config::{BacktestConfig, infer_filters};
pub use outcome::{BacktestOutcome, EquityPoint, ExitReason, Trade};
pub use series::{PreparedSeries, SymbolSeries};

/// Builds the model of one symbol (models keep per-symbol state, so each symbol gets its own).
pub type ModelFactory<'a> = dyn FnMut(&str) -> Result<Box<dyn Model>, BacktestError> + 'a;

/// The backtester. Build it with [`Backtest::new`], then [`Backtest::run`].
#[derive(Debug)]
pub struct Backtest {
    config: BacktestConfig,
    guard: RiskGuard,
    /// Size and check entries by the risk crate's reference arithmetic (see
    /// [`Backtest::with_reference_arithmetic`]).
    reference: bool,
}

impl Backtest {
    /// Checks the configuration.
    pub fn new(config: BacktestConfig) -> Result<Self, BacktestError> {
        config
            .exits
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))?;
        if config.interval_ms <= 0 {
            return Err(BacktestError::Config("interval must be positive".into()));
        }
        if config.initial_equity <= Decimal::ZERO {
            return Err(BacktestError::Config(
                "initial equity must be positive".into(),
            ));
        }
        config
            .limits
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))?;
        let mut guard = RiskGuard::new(config.limits.clone());
        for (symbol, f) in &config.filters {
            guard.set_filters(symbol, *f);
        }
        Ok(Self {
            config,
            guard,
            reference: false,
        })
    }

    /// The same backtest sizing entries with `Sizing::quantity_reference` and admitting them
    /// with `RiskGuard::admit_reference`: every figure of those steps in `Decimal` arithmetic,
    /// as they are defined, instead of the exact integer paths the engine takes. Slower, and
    /// the same outcome to the bit — tests run both and compare.
    pub fn with_reference_arithmetic(mut self) -> Self {
        self.reference = true;
        self
    }

    pub fn config(&self) -> &BacktestConfig {
        &self.config
    }

    /// Runs every series at once, candle by candle in open-time order. `model_for` builds the
    /// model of one symbol (models keep per-symbol state); `progress(done, total)` is called
    /// now and then with candle counts.
    pub fn run(
        &self,
        series: Vec<SymbolSeries>,
        model_for: &mut ModelFactory<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BacktestOutcome, BacktestError> {
        let inputs = series
            .iter()
            .map(|s| (s.symbol.as_str(), s.candles.as_slice(), None))
            .collect();
        self.run_inner(inputs, model_for, progress)
    }

    /// [`Backtest::run`] over series whose features were computed beforehand (see
    /// [`PreparedSeries`]); the same result, without recomputing them.
    ///
    /// # Errors
    /// As [`Backtest::run`]; a series prepared at another interval than the run's is refused.
    pub fn run_prepared(
        &self,
        series: &[PreparedSeries],
        model_for: &mut ModelFactory<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BacktestOutcome, BacktestError> {
        let inputs = series
            .iter()
            .map(|s| {
                let prepared = (&s.features[..], &s.valid[..]);
                (s.symbol.as_str(), &s.candles[..], Some(prepared))
            })
            .collect();
        self.run_inner(inputs, model_for, progress)
    }
}
