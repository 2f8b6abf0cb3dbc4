use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a market-context source said, published on `context` by the context task (trading-bot):
/// one event per source and request (e.g. CoinGecko's global market, BTCUSDT's funding rate).
///
/// Consumers align it by `published_at` — when the system could first have known it — never by
/// the `as_of` time the values describe. A value whose fetch is older than the source's limit is
/// sent as missing (`value: None`, `freshness: Stale`), never as fresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextObserved {
    /// The source: `coingecko`, `fear_greed`, `binance_futures`.
    pub source: String,
    /// The request within the source, e.g. `global`, `funding_rate:BTCUSDT`.
    pub request: String,
    /// When the context task published this, ms since the epoch: the time features align on.
    pub published_at: i64,
    /// When the values were fetched from the provider (ms), if they ever were.
    #[serde(default)]
    pub fetched_at: Option<i64>,
    /// `published_at - fetched_at` (ms), if fetched.
    #[serde(default)]
    pub age_ms: Option<i64>,
    pub freshness: Freshness,
    /// Why the values are missing (provider down, rate limited, circuit open, …).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub values: Vec<ContextValue>,
}

/// Whether a [`ContextObserved`]'s values may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Freshness {
    /// Fetched within the source's limit.
    Fresh,
    /// The last fetch is older than the limit: every value is sent as missing.
    Stale,
    /// Never fetched (or the cache lost it): no values.
    Missing,
}

/// One measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextValue {
    /// What it measures, e.g. `fear_greed`, `btc_dominance_pct`, `funding_rate`,
    /// `open_interest`, `top_long_short_position_ratio`, `taker_buy_sell_ratio`.
    pub metric: String,
    /// The futures symbol or coin it is about, when it is about one.
    #[serde(default)]
    pub symbol: Option<String>,
    /// `None` when missing (stale, or the provider gave nothing usable).
    #[serde(default)]
    pub value: Option<Decimal>,
    /// A label the provider attaches (fear & greed's classification, a trending coin's name).
    #[serde(default)]
    pub label: Option<String>,
    /// The time the value describes (ms), as the provider stamps it.
    #[serde(default)]
    pub as_of: Option<i64>,
}
