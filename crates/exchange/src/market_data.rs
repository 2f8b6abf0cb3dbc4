//! Binance USDⓈ-M futures data that carries positioning: funding rate history, open interest
//! (now and its history), top-trader and global long/short ratios and taker buy/sell volume.
//!
//! Public endpoints, sent through [`BinanceClient`]'s one request path, so they are paced by
//! the same weighted limiter, feed it Binance's used-weight headers and stop on 429/418 until
//! `Retry-After` like every other request. The published limits (Binance's USDⓈ-M "Market
//! Data" pages):
//! - `GET /fapi/v1/fundingRate`: shares a 500 requests / 5 min / IP limit with
//!   `GET /fapi/v1/fundingInfo`; `limit` default 100, max 1000; counted here as weight 1.
//! - `GET /fapi/v1/openInterest`: weight 1.
//! - `GET /futures/data/openInterestHist`, `topLongShortPositionRatio`,
//!   `globalLongShortAccountRatio`, `takerlongshortRatio`: weight 0 in the 2400/min pool but
//!   their own 1000 requests / 5 min / IP; `limit` default 30, max 500; only the latest 30 days.
//!
//! The per-endpoint request limits are the caller's to keep (`qt-context` paces them); this
//! module only speaks the wire. Values are `Decimal`; a field that does not parse is a
//! [`ExchangeError::Decode`], never a zero.

use qt_events::Decimal;
use reqwest::Method;
use serde::{Deserialize, Deserializer};

use crate::exchange::ExResult;
use crate::limiter::Orders;
use crate::rest::{Auth, BinanceClient};
use crate::sign::Params;

/// The period of a `/futures/data/*` statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataPeriod {
    M5,
    M15,
    M30,
    H1,
    H2,
    H4,
    H6,
    H12,
    D1,
}

impl DataPeriod {
    /// Binance's name, e.g. `5m`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPeriod::M5 => "5m",
            DataPeriod::M15 => "15m",
            DataPeriod::M30 => "30m",
            DataPeriod::H1 => "1h",
            DataPeriod::H2 => "2h",
            DataPeriod::H4 => "4h",
            DataPeriod::H6 => "6h",
            DataPeriod::H12 => "12h",
            DataPeriod::D1 => "1d",
        }
    }

    /// The period's length in ms.
    pub fn millis(self) -> i64 {
        const M: i64 = 60_000;
        match self {
            DataPeriod::M5 => 5 * M,
            DataPeriod::M15 => 15 * M,
            DataPeriod::M30 => 30 * M,
            DataPeriod::H1 => 60 * M,
            DataPeriod::H2 => 120 * M,
            DataPeriod::H4 => 240 * M,
            DataPeriod::H6 => 360 * M,
            DataPeriod::H12 => 720 * M,
            DataPeriod::D1 => 1440 * M,
        }
    }

    /// Parses Binance's name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            DataPeriod::M5,
            DataPeriod::M15,
            DataPeriod::M30,
            DataPeriod::H1,
            DataPeriod::H2,
            DataPeriod::H4,
            DataPeriod::H6,
            DataPeriod::H12,
            DataPeriod::D1,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A time window and page size of a history request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRange {
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub limit: Option<u16>,
}

/// One row of `GET /fapi/v1/fundingRate`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingRateRow {
    pub symbol: String,
    #[serde(deserialize_with = "strict_dec")]
    pub funding_rate: Decimal,
    #[serde(deserialize_with = "ms_time")]
    pub funding_time: i64,
    /// Binance sends `""` for old rows; `None` then.
    #[serde(default, deserialize_with = "opt_dec")]
    pub mark_price: Option<Decimal>,
}

/// `GET /fapi/v1/openInterest`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInterestNow {
    pub symbol: String,
    #[serde(deserialize_with = "strict_dec")]
    pub open_interest: Decimal,
    #[serde(deserialize_with = "ms_time")]
    pub time: i64,
}

/// One row of `GET /futures/data/openInterestHist`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInterestRow {
    pub symbol: String,
    #[serde(deserialize_with = "strict_dec")]
    pub sum_open_interest: Decimal,
    #[serde(deserialize_with = "strict_dec")]
    pub sum_open_interest_value: Decimal,
    #[serde(deserialize_with = "ms_time")]
    pub timestamp: i64,
}

/// One row of `topLongShortPositionRatio` or `globalLongShortAccountRatio` (Binance names the
/// shares `longAccount`/`shortAccount` in both).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LongShortRow {
    pub symbol: String,
    #[serde(deserialize_with = "strict_dec")]
    pub long_short_ratio: Decimal,
    #[serde(deserialize_with = "strict_dec")]
    pub long_account: Decimal,
    #[serde(deserialize_with = "strict_dec")]
    pub short_account: Decimal,
    #[serde(deserialize_with = "ms_time")]
    pub timestamp: i64,
}

/// One row of `GET /futures/data/takerlongshortRatio`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TakerVolumeRow {
    #[serde(deserialize_with = "strict_dec")]
    pub buy_sell_ratio: Decimal,
    #[serde(deserialize_with = "strict_dec")]
    pub buy_vol: Decimal,
    #[serde(deserialize_with = "strict_dec")]
    pub sell_vol: Decimal,
    #[serde(deserialize_with = "ms_time")]
    pub timestamp: i64,
}

fn to_dec(s: &str) -> Option<Decimal> {
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

fn strict_dec<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => {
            to_dec(&s).ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {s:?}")))
        }
        serde_json::Value::Number(n) => to_dec(&n.to_string())
            .ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {n}"))),
        other => Err(serde::de::Error::custom(format!(
            "expected a decimal, got {other}"
        ))),
    }
}

fn opt_dec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => to_dec(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {s:?}"))),
        Some(serde_json::Value::Number(n)) => Ok(to_dec(&n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a decimal, got {other}"
        ))),
    }
}

/// A time in ms, as a number or a string of digits (Binance sends both).
fn ms_time<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom(format!("not a time in ms: {n}"))),
        serde_json::Value::String(s) => s
            .parse::<i64>()
            .map_err(|_| serde::de::Error::custom(format!("not a time in ms: {s:?}"))),
        other => Err(serde::de::Error::custom(format!(
            "expected a time in ms, got {other}"
        ))),
    }
}

fn range_params(symbol: &str, period: Option<DataPeriod>, r: HistoryRange) -> Params {
    let mut p = Params::new();
    p.push("symbol", symbol);
    p.push_opt("period", period.map(DataPeriod::as_str));
    p.push_opt("startTime", r.start_time)
        .push_opt("endTime", r.end_time)
        .push_opt("limit", r.limit);
    p
}

impl BinanceClient {
    /// `GET /fapi/v1/fundingRate`: funding rates charged, oldest first.
    pub async fn funding_rate_history(
        &self,
        symbol: &str,
        range: HistoryRange,
    ) -> ExResult<Vec<FundingRateRow>> {
        let p = range_params(symbol, None, range);
        self.call(
            Method::GET,
            "/fapi/v1/fundingRate",
            &p,
            Auth::None,
            1,
            Orders::None,
        )
        .await
    }

    /// `GET /fapi/v1/openInterest`: the open interest now, in contracts (base asset).
    pub async fn open_interest(&self, symbol: &str) -> ExResult<OpenInterestNow> {
        let mut p = Params::new();
        p.push("symbol", symbol);
        self.call(
            Method::GET,
            "/fapi/v1/openInterest",
            &p,
            Auth::None,
            1,
            Orders::None,
        )
        .await
    }

    /// `GET /futures/data/openInterestHist`.
    pub async fn open_interest_history(
        &self,
        symbol: &str,
        period: DataPeriod,
        range: HistoryRange,
    ) -> ExResult<Vec<OpenInterestRow>> {
        self.futures_data("/futures/data/openInterestHist", symbol, period, range)
            .await
    }

    /// `GET /futures/data/topLongShortPositionRatio`: top traders' long/short by position.
    pub async fn top_long_short_position_ratio(
        &self,
        symbol: &str,
        period: DataPeriod,
        range: HistoryRange,
    ) -> ExResult<Vec<LongShortRow>> {
        self.futures_data(
            "/futures/data/topLongShortPositionRatio",
            symbol,
            period,
            range,
        )
        .await
    }

    /// `GET /futures/data/globalLongShortAccountRatio`: all accounts' long/short.
    pub async fn global_long_short_account_ratio(
        &self,
        symbol: &str,
        period: DataPeriod,
        range: HistoryRange,
    ) -> ExResult<Vec<LongShortRow>> {
        self.futures_data(
            "/futures/data/globalLongShortAccountRatio",
            symbol,
            period,
            range,
        )
        .await
    }

    /// `GET /futures/data/takerlongshortRatio`: taker buy and sell volume.
    pub async fn taker_long_short_ratio(
        &self,
        symbol: &str,
        period: DataPeriod,
        range: HistoryRange,
    ) -> ExResult<Vec<TakerVolumeRow>> {
        self.futures_data("/futures/data/takerlongshortRatio", symbol, period, range)
            .await
    }

    async fn futures_data<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        symbol: &str,
        period: DataPeriod,
        range: HistoryRange,
    ) -> ExResult<Vec<T>> {
        let p = range_params(symbol, Some(period), range);
        // Weight 0 in the 2400/min pool (their own 1000 / 5 min limit is the caller's).
        self.call(Method::GET, path, &p, Auth::None, 0, Orders::None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_binance_documented_shapes_with_string_or_number_times() {
        let f: Vec<FundingRateRow> = serde_json::from_str(
            r#"[{"symbol":"BTCUSDT","fundingRate":"-0.03750000","fundingTime":1570608000000,"markPrice":"34287.54619963"},
                {"symbol":"BTCUSDT","fundingRate":"0.00010000","fundingTime":1570636800000,"markPrice":""}]"#,
        )
        .expect("funding rows");
        assert_eq!(
            f[0].funding_rate,
            "-0.0375".parse::<Decimal>().expect("dec")
        );
        assert_eq!(f[1].mark_price, None);
        let t: Vec<TakerVolumeRow> = serde_json::from_str(
            r#"[{"buySellRatio":"1.5586","buyVol":"387.3300","sellVol":"248.5030","timestamp":"1585614900000"}]"#,
        )
        .expect("taker rows");
        assert_eq!(t[0].timestamp, 1_585_614_900_000);
        let o: OpenInterestNow = serde_json::from_str(
            r#"{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}"#,
        )
        .expect("oi");
        assert_eq!(o.open_interest.to_string(), "10659.509");
    }

    #[test]
    fn a_value_that_is_not_a_decimal_is_an_error_not_a_zero() {
        let r: Result<Vec<LongShortRow>, _> = serde_json::from_str(
            r#"[{"symbol":"BTCUSDT","longShortRatio":"","longAccount":"0.5","shortAccount":"0.5","timestamp":1}]"#,
        );
        assert!(r.is_err());
    }
}
