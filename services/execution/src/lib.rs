//! `execution` is the only service that places orders on the exchange.
//!
//! It consumes intents, checks them against the risk guard (`qt-risk`, counting orders in
//! flight), places them with the order protocol (client order id from the intent id, SENDING
//! recorded before the request, unknown outcomes resolved by query after the recvWindow fence,
//! conditional orders through the algo endpoint), follows fills on the user data stream (polling
//! as fallback), publishes order and position facts with deterministic ids, reconciles with the
//! exchange on start and every minute, and obeys the kill switch and close-all. The risk guard's
//! drawdown breaker, fed by portfolio snapshots, stops entries at `max_drawdown_pct` below the
//! equity peak (alerts at 50% and 80% of it) until an operator's `ResumeTrading`. Its state lives
//! in SQLite (default) or PostgreSQL through `qt-store`.
//!
//! It never decides what to trade, never sends a second order for one intent leg, and never
//! takes an intent before its first reconciliation.

mod admission;
pub mod app;
pub mod breaker;
pub mod db;
pub mod error;
mod facts;
pub mod fills;
pub mod funding;
pub mod host;
mod intents;
pub mod order;
mod protect;
pub mod reconcile;
mod send;
mod service;
pub mod settings;

pub use app::{ControlHandler, IntentHandler, PortfolioHandler, run_periodic, run_user_stream};
pub use db::{Db, PositionRow};
pub use error::ExecError;
pub use facts::reject_reason;
pub use fills::FillIn;
pub use order::{
    Conditional, Leg, OrderEvent, OrderRecord, OrderSpec, OrderState, PlainOrder, Pricing,
    Rejection,
};
pub use service::{Execution, SERVICE};
pub use settings::Settings;
