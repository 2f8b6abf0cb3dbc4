//! The JSON of the positioning endpoints, in Binance's documented shapes (decimals as strings,
//! times in ms).

use qt_events::Decimal;
use serde_json::{Value, json};

/// `GET /fapi/v1/openInterest`.
pub(crate) fn open_interest(symbol: &str, oi: Decimal, time: i64) -> Value {
    json!({"openInterest": oi.normalize().to_string(), "symbol": symbol, "time": time})
}

/// One row of `openInterestHist`.
pub(crate) fn open_interest_hist(symbol: &str, oi: Decimal, value: Decimal, ts: i64) -> Value {
    json!({"symbol": symbol, "sumOpenInterest": oi.round_dp(8).to_string(),
           "sumOpenInterestValue": value.round_dp(8).to_string(), "timestamp": ts})
}

/// One row of `topLongShortPositionRatio` / `globalLongShortAccountRatio`.
pub(crate) fn long_short(
    symbol: &str,
    ratio: Decimal,
    long: Decimal,
    short: Decimal,
    ts: i64,
) -> Value {
    json!({"symbol": symbol, "longShortRatio": ratio.to_string(), "longAccount": long.to_string(),
           "shortAccount": short.to_string(), "timestamp": ts})
}

/// One row of `takerlongshortRatio`.
pub(crate) fn taker(ratio: Decimal, buy: Decimal, sell: Decimal, ts: i64) -> Value {
    json!({"buySellRatio": ratio.round_dp(4).to_string(), "buyVol": buy.normalize().to_string(),
           "sellVol": sell.normalize().to_string(), "timestamp": ts})
}
