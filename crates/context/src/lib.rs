//! `qt-context`: market context — sentiment and positioning that no single symbol's candles
//! carry — from CoinGecko (global market, the universe's coins, trending), alternative.me's
//! Fear & Greed index, and Binance USDⓈ-M futures data (funding, open interest, long/short and
//! taker ratios, through `qt-exchange`).
//!
//! Each provider is a small client behind one trait ([`Source`]) with a configurable base URL.
//! [`ContextHub`] puts them behind one door that never storms a provider: a cache in Redis that
//! every instance shares (TTL per source), one upstream request per request and TTL however many
//! callers ask at once (coalesced in the process and, by a lease in Redis, across instances),
//! per-source request budgets from the providers' published limits, backoff that honours
//! `Retry-After` and is shared through Redis, and a circuit breaker. Every value carries its
//! fetch time; a value older than its source's limit is sent as missing, never as fresh.
//! [`run_publisher`] publishes what the hub says as `ContextObserved` on `context`.
//! [`history`] is the file format of context history, and its reader aligns values by the time
//! they were published, never the time they describe; [`fetch`] downloads that history.
//!
//! It must never invent a value (no zero for missing, no stale value passed as fresh), never let
//! an API key reach a log or `Debug`, and never decide anything about trading.

mod breaker;
mod error;
pub mod fetch;
pub mod history;
mod http;
mod hub;
pub mod num;
mod pace;
mod publish;
mod source;
pub mod sources;

pub use breaker::{Breaker, BreakerState};
pub use error::SourceError;
pub use history::{ContextHistory, HistoryRow};
pub use http::JsonGet;
pub use hub::{ContextHub, HubConfig, Reading, SourceHealth};
pub use pace::Pacer;
pub use publish::run_publisher;
pub use source::{Limit, Policy, Query, Source};
