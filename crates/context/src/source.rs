//! The [`Source`] trait every provider client implements, the [`Query`]s they answer and each
//! source's [`Policy`] (how long a value is fresh, how many requests it may send).

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use qt_events::ContextValue;

use crate::SourceError;

/// One request a source answers. Its [`Query::key`] names it in the cache, in events
/// (`ContextObserved.request`) and in health.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// CoinGecko `/api/v3/global`: total market cap and volume, BTC and ETH dominance, 24h change.
    Global,
    /// CoinGecko `/api/v3/coins/markets` for the configured coin ids.
    CoinMarkets,
    /// CoinGecko `/api/v3/search/trending`.
    Trending,
    /// alternative.me `/fng/`: the latest fear & greed value.
    FearGreed,
    /// Binance `/fapi/v1/fundingRate` (latest settled rate) of a symbol.
    FundingRate(String),
    /// Binance `/fapi/v1/openInterest` of a symbol.
    OpenInterest(String),
    /// Binance `/futures/data/openInterestHist` (latest period) of a symbol.
    OpenInterestHist(String),
    /// Binance `/futures/data/topLongShortPositionRatio` (latest period).
    TopLongShortPosition(String),
    /// Binance `/futures/data/globalLongShortAccountRatio` (latest period).
    GlobalLongShortAccount(String),
    /// Binance `/futures/data/takerlongshortRatio` (latest period).
    TakerVolume(String),
}

impl Query {
    /// The stable name of the request, e.g. `global`, `funding_rate:BTCUSDT`.
    pub fn key(&self) -> String {
        match self {
            Query::Global => "global".into(),
            Query::CoinMarkets => "coin_markets".into(),
            Query::Trending => "trending".into(),
            Query::FearGreed => "fng".into(),
            Query::FundingRate(s) => format!("funding_rate:{s}"),
            Query::OpenInterest(s) => format!("open_interest:{s}"),
            Query::OpenInterestHist(s) => format!("open_interest_hist:{s}"),
            Query::TopLongShortPosition(s) => format!("top_long_short_position:{s}"),
            Query::GlobalLongShortAccount(s) => format!("global_long_short_account:{s}"),
            Query::TakerVolume(s) => format!("taker_volume:{s}"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// A request budget: at most `requests` in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub per: Duration,
}

/// How a source's values age and how its failures are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A cached value younger than this is served without asking the provider.
    pub ttl: Duration,
    /// A value older than this is stale: sent as missing, never as fresh.
    pub max_age: Duration,
    /// First backoff after a failure without `Retry-After`; doubles per consecutive failure.
    pub backoff: Duration,
    /// The longest backoff (and the longest `Retry-After` honoured as is).
    pub max_backoff: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one trial request.
    pub breaker_open_for: Duration,
}

/// A market-context provider: a small client that answers [`Query`]s with values.
///
/// Implementations only speak their provider's protocol; caching, pacing, backoff and the
/// circuit breaker are the [`crate::ContextHub`]'s, the same for every source.
pub trait Source: Send + Sync + fmt::Debug {
    /// `coingecko`, `fear_greed`, `binance_futures`.
    fn name(&self) -> &'static str;
    /// The requests one poll makes.
    fn queries(&self) -> Vec<Query>;
    /// Freshness and failure handling.
    fn policy(&self) -> Policy;
    /// The budget `query` draws from: a group name (requests of one group share it) and its
    /// limit, from the provider's published limits.
    fn limit(&self, query: &Query) -> (&'static str, Limit);
    /// Asks the provider.
    fn fetch<'a>(
        &'a self,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<ContextValue>, SourceError>>;
}
