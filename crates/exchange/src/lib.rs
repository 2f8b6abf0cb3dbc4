//! `qt-exchange`: the Binance USDⓈ-M futures client, behind the [`Exchange`] trait.
//!
//! REST on reqwest ([`BinanceClient`]): market data, orders on `/fapi/v1/order`, conditional
//! orders on `/fapi/v1/algoOrder`, positions, balances, leverage, listenKeys; HMAC-SHA256
//! signing of the exact query sent; rounding to the symbol filters and min-notional refusal
//! before anything leaves; a weighted rate limiter that follows Binance's headers and holds every
//! request after a 429/418; errors classified as rejected / unknown outcome / retryable, and
//! [`resolve_unknown_order`] to settle an unknown outcome. WebSocket on tokio-tungstenite
//! ([`ws`]): market streams and the user data stream as typed events on a channel, with pongs,
//! reconnect with backoff, listenKey keepalive and re-creation, and a reconnect before 24 h.
//! Futures data that carries positioning (funding history, open interest, long/short and taker
//! ratios) is in [`market_data`], through the same limiter.
//!
//! This is the only crate that speaks Binance. It must never know about Redis, the bus, or
//! trading decisions, never place an order it was not asked to place (no blind retry of an order
//! whose outcome is unknown), and never let an API key or secret reach a log line, an error
//! message or `Debug` output. Base URLs come from [`ExchangeConfig`], so the same code runs
//! against the simulator (paper), testnet and mainnet.

pub mod config;
pub mod error;
mod exchange;
pub mod filters;
pub mod limiter;
pub mod market_data;
pub mod modes;
mod resolve;
mod rest;
pub mod sign;
mod trace;
pub mod types;
pub mod vocab;
pub mod ws;

pub use config::{ConfigError, ExchangeConfig, Mode, WsConfig};
pub use error::{ErrorClass, ExchangeError, Fence, Refusal, classify};
pub use exchange::{ExResult, Exchange};
pub use filters::{ExchangeInfo, FilterValueError, PriceRounding, SymbolFilters, SymbolInfo};
pub use limiter::Orders;
pub use modes::{AccountModes, ModesError, PositionMode, check_account_modes};
pub use resolve::{
    AlgoResolution, Resolution, Settled, check_unknown_algo_order, check_unknown_order,
    resolve_unknown_algo_order, resolve_unknown_order,
};
pub use rest::BinanceClient;
pub use types::*;
pub use vocab::{
    AlgoStatus, ApiCode, ExchangeClose, ExecutionType, OrderStatus, is_exchange_close_order_id,
};

/// Installs aws-lc-rs as the process-wide rustls crypto provider; a second call (or a provider
/// installed by someone else) is fine. Call it at the top of every `main` and test fixture.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
