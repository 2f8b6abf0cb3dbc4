//! `exit-brain` protects every open position with a stop on the exchange and runs its exit plan:
//! a volatility-adaptive take-profit ladder (30 / 30 / 40% by default), the stop moved to
//! break-even after the first leg and trailed from mark prices, legs resized on partial entry
//! fills, a time stop, and a watchdog that closes at market any position whose stop is not
//! confirmed by the exchange in time. On a close it records the outcome and teaches the symbol's
//! profile. Plans, profiles and outcomes live in its database; after a restart it checks them
//! against the exchange before it acts.
//!
//! It consumes `positions`, `orders`, `market` and `control`, and publishes intents
//! (`ProtectPosition`, `ClosePosition`, `CancelOrder`) and alerts. It never places, changes or
//! cancels an order itself (execution is the only writer) and never re-implements exit logic:
//! every level comes from `qt-exits`.
//!
//! - [`brain`]: the reaction to each event, one atomic commit per event, replay of a redelivered
//!   event's intents;
//! - [`store`]: the [`PlanStore`](store::PlanStore) seam and its in-memory form; [`sql`]: the
//!   database form over `qt-store`;
//! - [`reconcile`]: what the exchange holds, read at start;
//! - [`app`]: wiring into `qt-runtime` (consumers, watchdog task).

pub mod app;
pub mod brain;
pub mod reconcile;
pub mod settings;
pub mod sql;
pub mod store;
pub mod volatility;

pub use app::build;
pub use brain::{Brain, BrainConfig, BrainError, ExchangeView};
pub use settings::Settings;
pub use store::{MemoryStore, PlanStore, Tracked};
