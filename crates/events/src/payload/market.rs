use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A closed candle (kline) of one symbol and interval. Published to `market` by trading-bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CandleClosed {
    pub symbol: String,
    /// Binance interval name: `1m`, `5m`, `1h`, …
    pub interval: String,
    /// Open time, ms since the epoch (UTC); a candle is identified by it.
    pub open_time: i64,
    /// Close time, ms since the epoch: `open_time + interval - 1`.
    pub close_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Volume in the base asset.
    pub volume: Decimal,
    /// Volume in the quote asset.
    #[serde(default)]
    pub quote_volume: Decimal,
    #[serde(default)]
    pub trades: u64,
}

/// A mark price update of one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MarkPriceUpdated {
    pub symbol: String,
    pub mark_price: Decimal,
    #[serde(default)]
    pub index_price: Option<Decimal>,
    #[serde(default)]
    pub funding_rate: Option<Decimal>,
    /// Exchange event time, ms since the epoch.
    pub event_time: i64,
}
