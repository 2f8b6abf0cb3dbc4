//! `sim-exchange`: a simulated Binance USDⓈ-M futures exchange that speaks Binance's REST and
//! WebSocket protocol (paths, parameters, HMAC signatures, JSON shapes, error codes, rate-limit
//! headers) closely enough that our client, or any Binance futures client pointed at its URL,
//! works against it unchanged.
//!
//! The market replays Binance kline files (read by `qt-candles`) or a seeded random walk, in
//! real time, accelerated, or stepped by tests through the `/sim` control API. Orders fill through
//! `qt-matching`, the same fill model the backtester uses; funding is charged at each funding
//! time of the replay clock by `qt-candles`' funding schedule, the backtester's. State is
//! snapshotted atomically to a folder and reloaded on start. Faults (latency, 5xx, lost
//! responses, dropped WebSockets) can be injected for tests.
//!
//! It must never panic on anything a client sends, never log or echo an API secret, and never
//! reach the real Binance or read the wall clock except through the injected clock.
//!
//! A REST request goes `routes` (the one table: method, path, gate, weight, request type) →
//! middleware: `routes::edge` (body, endpoint, parameters parsed once into a `call::Call`),
//! `faults`, `weight` (server time, weight and order counts against `limits`), `auth` (key, signature) → its type in `requests`
//! (`parse`, then `apply`) → the `exchange` (state behind a small API, which queues the user
//! and market events) → `views` (Binance's JSON). `app` holds what every connection shares;
//! `ws` serves the streams from its channels; `server` runs it all. Every refusal is an
//! `error::ApiError`, which is the response.

mod app;
mod auth;
mod call;
pub mod config;
pub mod error;
pub mod exchange;
mod faults;
pub mod funding;
mod limits;
pub mod market;
pub mod params;
mod requests;
mod routes;
mod server;
pub mod sign;
mod views;
mod weight;
mod wire;
mod ws;

use std::sync::Arc;

pub use app::App;
pub use config::{
    ApiKey, Faults, FundingSettings, Limits, MarketSource, Settings, SimConfig, funding_dir_beside,
    parse_api_keys,
};
use tokio_util::sync::CancellationToken;

/// Errors starting the simulator; none is retryable without a change of configuration.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("market: {0}")]
    Market(#[from] market::MarketError),
    /// A funding-rate history file could not be read or parsed.
    #[error("funding rates: {0}")]
    Funding(qt_candles::CandleError),
    #[error("state snapshot {path}: {reason}")]
    Snapshot { path: String, reason: String },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

impl SimError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SimError::Io(_))
    }
}

/// Serve the simulator on `listener` until `shutdown` is cancelled; the state is snapshotted
/// (when a state folder is configured) before it returns.
pub async fn serve(
    config: SimConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    let app = Arc::new(App::new(config)?);
    server::run(app, listener, shutdown).await
}
