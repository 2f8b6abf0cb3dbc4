//! `qt-backtest` replays kline files through exactly the code that trades live: the
//! `qt-features` engine, a `qt-models` model, the `qt-risk` guard and sizing, `qt-exits` plans and
//! the `qt-matching` fill model (fees, slippage, volume-capped partial fills, the stop counted
//! first when a stop and a target both lie inside one candle). It is event-driven over many
//! symbols at once, merged candle by candle by open time. It writes a trade list (CSV), an
//! equity curve (CSV and a hand-drawn SVG) and metrics (JSON: net PnL, win rate, profit factor,
//! max drawdown, Sharpe, Sortino, exposure, trades per day, long/short mix), and answers the
//! goal check (`qtctl goal`).
//!
//! It must never know about Redis, HTTP, SQL or an async runtime, and its engine never reads the
//! clock: simulated time is the candles' own. Only the `cli` module touches files.

pub mod charts;
pub mod cli;
pub mod dates;
mod engine;
pub mod funding;
pub mod goal;
pub mod html;
pub mod report;
pub mod stats;
pub mod walkforward;
pub mod wf_report;

pub use engine::{
    Backtest, BacktestConfig, BacktestOutcome, EquityPoint, ExitReason, ModelFactory,
    PreparedSeries, SymbolSeries, Trade, infer_filters,
};
pub use qt_risk::Sizing;

use std::path::{Path, PathBuf};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("invalid backtest configuration: {0}")]
    Config(String),
    #[error("model: {0}")]
    Model(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BacktestError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Only file-system errors may heal on retry; bad configuration or models do not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}
