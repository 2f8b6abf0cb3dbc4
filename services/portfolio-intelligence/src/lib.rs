//! `portfolio-intelligence`: what the system holds and earned, how close each limit is, whether
//! every service is healthy, and telling a person when something needs them.
//!
//! It syncs positions and balances from the exchange, consumes `qt:intents`, `qt:orders`,
//! `qt:positions`, `qt:market`, `qt:signals`, `qt:models`, `qt:control` and `qt:alerts`,
//! computes PnL and risk metrics ([`metrics`], [`book`]), explains each symbol's latest
//! decision ([`decisions`]), reads clm's model cards and schedule ([`models`]), stores and
//! publishes `PortfolioSnapshot`s, detects drift between the exchange and the services' belief,
//! runs the alert rules and delivers alerts ([`alerts`]), and serves a JSON API, a WebSocket
//! and the dashboard ([`api`]).
//!
//! It never places an order and never changes a position: its control endpoints only publish
//! operator commands for the services that own them (`qt:control`; closing one position is a
//! `ClosePosition` intent execution carries out, a rollback a `ModelRolledBack` on `qt:models`).

pub mod alerts;
pub mod api;
pub mod app;
pub mod book;
pub mod charts;
pub mod control_state;
pub mod db;
pub mod decisions;
pub mod exchange_api;
pub mod metrics;
pub mod models;
pub mod settings;
pub mod sync;

pub use app::{Intake, Shared};
pub use db::Db;
pub use settings::Settings;
pub use sync::{Intel, run_periodic};
