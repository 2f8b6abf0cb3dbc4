//! Market-data requests (no key): `ping`, `time`, `exchangeInfo`, `klines`, `depth`,
//! `ticker/24hr`, `ticker/price`, `ticker/bookTicker`, `premiumIndex`, `fundingRate`.

use qt_events::Decimal;
use serde_json::{Value, json};

use super::{Args, Plain, Request};
use crate::app::App;
use crate::error::ApiError;
use crate::exchange::Exchange;
use crate::market::SymbolMarket;
use crate::views;

/// `GET /fapi/v1/ping`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ping;

impl Plain for Ping {
    fn answer(_: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        Ok(json!({}))
    }
}

/// `GET /fapi/v1/time`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerTime;

impl Plain for ServerTime {
    fn answer(_: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        Ok(json!({"serverTime": now}))
    }
}

/// `GET /fapi/v1/exchangeInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExchangeInfo;

impl Plain for ExchangeInfo {
    fn answer(app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        Ok(views::market::exchange_info(
            app.instruments.iter(),
            &app.limits.get(),
            now,
        ))
    }
}

const INTERVALS: [&str; 14] = [
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
];

/// `GET /fapi/v1/klines`: closed candles up to market time, aggregated to `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Klines {
    symbol: String,
    interval_ms: i64,
    limit: usize,
    start: Option<i64>,
    end: Option<i64>,
}

impl Request for Klines {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let symbol = p.required("symbol")?;
        let interval = p.required("interval")?;
        let interval_ms = INTERVALS
            .contains(&interval)
            .then(|| qt_candles::parse_interval(interval).ok())
            .flatten()
            .ok_or_else(|| ApiError::bad(-1120, "Invalid interval."))?;
        let limit = p.count("limit", 500, 1500)?;
        a.instruments.get(symbol)?;
        Ok(Self {
            symbol: symbol.to_string(),
            interval_ms,
            limit,
            start: p.int("startTime")?,
            end: p.int("endTime")?,
        })
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let rows = ex
                .market()
                .klines(
                    &self.symbol,
                    self.interval_ms,
                    self.start,
                    self.end,
                    self.limit,
                )
                .ok_or_else(|| ApiError::bad(-1120, "Invalid interval."))?;
            Ok(Value::Array(
                rows.iter()
                    .map(|c| views::market::kline(c, self.interval_ms))
                    .collect(),
            ))
        })
    }
}

/// `GET /fapi/v1/depth`: the synthetic book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Depth {
    symbol: String,
    limit: i64,
}

impl Request for Depth {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        let symbol = p.required("symbol")?;
        let limit = p.int("limit")?.unwrap_or(500);
        if ![5, 10, 20, 50, 100, 500, 1000].contains(&limit) {
            return Err(ApiError::invalid("limit"));
        }
        a.instruments.get(symbol)?;
        Ok(Self {
            symbol: symbol.to_string(),
            limit,
        })
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let m = ex
                .market()
                .get(&self.symbol)
                .ok_or_else(ApiError::invalid_symbol)?;
            Ok(views::market::depth(m, self.limit, now))
        })
    }
}

/// The answer for `symbol`, or a list over every symbol when none is named (symbols without
/// an answer left out); an unknown named symbol is `-1121`.
fn per_symbol(
    app: &App,
    symbol: Option<&str>,
    f: impl Fn(&Exchange, &SymbolMarket, &str) -> Option<Value>,
) -> Result<Value, ApiError> {
    app.read(|ex| {
        let one = |s: &str| ex.market().get(s).and_then(|m| f(ex, m, s));
        match symbol {
            Some(s) => one(s).ok_or_else(ApiError::invalid_symbol),
            None => Ok(Value::Array(
                ex.market().symbols.keys().filter_map(|s| one(s)).collect(),
            )),
        }
    })
}

/// Market-data requests about one symbol or all: `symbol` is optional.
macro_rules! per_symbol_request {
    ($(#[$doc:meta])* $name:ident, |$ex:ident, $m:ident, $s:ident, $now:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(crate) struct $name {
            symbol: Option<String>,
        }

        impl Request for $name {
            fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
                Ok(Self {
                    symbol: a.params.get("symbol").map(str::to_string),
                })
            }

            fn apply(self, app: &App, _: &str, $now: i64) -> Result<Value, ApiError> {
                per_symbol(app, self.symbol.as_deref(), |$ex, $m, $s| $body)
            }
        }
    };
}

per_symbol_request!(
    /// `GET /fapi/v1/ticker/24hr`.
    Ticker24h,
    |_ex, m, s, now| views::market::ticker_24h(m, s, now)
);
per_symbol_request!(
    /// `GET /fapi/v1|v2/ticker/price`.
    TickerPrice,
    |_ex, m, s, now| Some(views::market::price_ticker(m, s, now))
);
per_symbol_request!(
    /// `GET /fapi/v1/ticker/bookTicker`.
    BookTicker,
    |_ex, m, s, now| Some(views::market::book_ticker(m, s, now))
);
per_symbol_request!(
    /// `GET /fapi/v1/premiumIndex`: mark price and the next funding time and rate.
    PremiumIndex,
    |ex, m, s, now| ex
        .next_funding(s)
        .map(|next| views::market::premium_index(m, s, next, now))
);

/// `GET /fapi/v1/fundingRate`: the rates charged at each funding time up to market time, of
/// one symbol or of all (merged by time); default limit 100, at most 1000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FundingRateHistory {
    symbol: Option<String>,
    limit: usize,
    start: Option<i64>,
    end: Option<i64>,
}

impl Request for FundingRateHistory {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let p = a.params;
        Ok(Self {
            limit: p.count("limit", 100, 1000)?,
            start: p.int("startTime")?,
            end: p.int("endTime")?,
            symbol: p.get("symbol").map(str::to_string),
        })
    }

    fn apply(self, app: &App, _: &str, _: i64) -> Result<Value, ApiError> {
        let (start, end, limit) = (self.start, self.end, self.limit);
        app.read(|ex| {
            // Rows (symbol, time, rate, mark) of one symbol.
            let one = |s: &str| {
                ex.funding_rate_history(s, start, end, limit).map(|rows| {
                    rows.into_iter()
                        .map(|(t, rate, mark)| (s.to_string(), t, rate, mark))
                        .collect::<Vec<_>>()
                })
            };
            let render = |rows: Vec<(String, i64, Decimal, Decimal)>| {
                Value::Array(
                    rows.iter()
                        .map(|(s, t, rate, mark)| views::market::funding_rate(s, *t, *rate, *mark))
                        .collect(),
                )
            };
            match &self.symbol {
                Some(s) => one(s).map(render).ok_or_else(ApiError::invalid_symbol),
                None => {
                    let mut all: Vec<_> = ex
                        .market()
                        .symbols
                        .keys()
                        .filter_map(|s| one(s))
                        .flatten()
                        .collect();
                    all.sort_by_key(|r| r.1);
                    if start.is_some() {
                        all.truncate(limit);
                    } else if all.len() > limit {
                        all.drain(..all.len() - limit);
                    }
                    Ok(render(all))
                }
            }
        })
    }
}
