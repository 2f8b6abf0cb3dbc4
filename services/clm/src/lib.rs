//! `clm` (continuous learning) retrains the trading-bot's model on fresh candles and on the
//! system's own trade outcomes, backtests the challenger and the champion on the same recent
//! out-of-sample window with the live exit and risk settings, and ships the challenger only
//! when it passes the promotion gate; it keeps a registry of versions (artifacts on a shared
//! directory with their SHA-256), publishes `ModelDeployed` on `models`, follows rollbacks, and
//! raises alerts when the champion ages, its signal mix drifts or it wins less than its backtest.
//!
//! It never trades, never sends intents, and never re-implements features, labels, training or
//! the backtest (`qt-features`, `qt-models`, `qt-backtest` do that).

pub mod app;
pub mod cycle;
pub mod db;
pub mod gate;
pub mod memory;
pub mod monitor;
pub mod registry;
pub mod settings;

pub use app::{CONSUMES, Clm, Inbox, PRODUCES, Schedule, routes, run_scheduler};
pub use db::Db;
pub use settings::Settings;
