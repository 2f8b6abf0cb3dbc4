//! Funding rates followed live, for the models trained with the funding inputs
//! (`qt_features::context`; an artifact's `funding_features`).
//!
//! Each symbol this instance decides gets its own rates from the exchange's funding history
//! (`GET /fapi/v1/fundingRate`, through `qt-exchange`, so its weight accounting and 429 hold
//! apply): at warm-up the last [`HISTORY_MS`] before its first history candle (enough for the
//! 30-day z-score of every warm-up candle), then the new ones as they come. The schedule is the
//! market's own time, the candles' closes (in paper the simulator's candles carry historical
//! times, so the server clock says nothing about them): when a candle closes at or after the
//! symbol's next expected funding time (the last one + the interval between the last two, 8 h
//! when unknown), the rates since the last one are fetched before that candle is decided.
//! A fetch that finds nothing new (not listed yet) or fails is tried again after 1 minute of
//! market time, doubling to at most an hour; a refusal (`Rejected`: an unknown symbol, an
//! exchange without the endpoint) stops the symbol's polling, and when every symbol is
//! refused the exchange cannot give funding: a model that needs it is refused.
//!
//! Nothing here decides what a candle reads: fetched rates go to `qt_features` as they are
//! ([`qt_features::FundingSeries::fetched`]), which makes a rate readable only from its
//! publication time (funding time + 1 minute) — the same function and rule as the training
//! path, so the live inputs equal the offline ones bit for bit (`tests/funding.rs`).

use std::collections::BTreeMap;

use qt_exchange::market_data::HistoryRange;
use qt_exchange::{BinanceClient, ErrorClass, ExchangeError};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// How much history a symbol's warm-up loads before its first candle: the 30-day window of
/// the z-score and a day more (what `qt_features::FundingSeries` keeps live).
pub const HISTORY_MS: i64 = 31 * 24 * HOUR;

/// Rows asked per request (Binance's maximum).
const PAGE: u16 = 1000;

/// Pages read at most per fetch (1000 rows each: years of 8-hour rates).
const MAX_PAGES: usize = 20;

/// One symbol's polling state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Track {
    /// The last two funding times fetched.
    last: Option<i64>,
    prev: Option<i64>,
    /// Market time of the next try after a fetch that found nothing new or failed.
    retry_at: Option<i64>,
    /// Fetches in a row that found nothing new or failed.
    misses: u32,
    /// The exchange refused the symbol's funding history: no more polling.
    refused: Option<String>,
}

impl Track {
    /// The interval between the last two funding times, as the inputs infer it (1 h to 8 h,
    /// else 8 h).
    fn interval(&self) -> i64 {
        match (self.prev, self.last) {
            (Some(p), Some(l)) if (HOUR..=8 * HOUR).contains(&(l - p)) => l - p,
            _ => 8 * HOUR,
        }
    }
}

/// What the bot knows of its symbols' funding polling.
#[derive(Debug, Default)]
pub struct FundingFollower {
    symbols: BTreeMap<String, Track>,
}

impl FundingFollower {
    /// Starts following `symbol` (its history is fetched at its warm-up).
    pub fn add(&mut self, symbol: &str) {
        self.symbols.entry(symbol.to_owned()).or_default();
    }

    /// Stops following `symbol`.
    pub fn remove(&mut self, symbol: &str) {
        self.symbols.remove(symbol);
    }

    pub fn follows(&self, symbol: &str) -> bool {
        self.symbols.contains_key(symbol)
    }

    /// Whether `symbol`'s rates should be fetched before deciding the candle closing at
    /// `close` (market time).
    pub fn due(&self, symbol: &str, close: i64) -> bool {
        let Some(t) = self.symbols.get(symbol) else {
            return false;
        };
        if t.refused.is_some() {
            return false;
        }
        if let Some(r) = t.retry_at {
            return close >= r;
        }
        t.last
            .is_none_or(|l| close >= l.saturating_add(t.interval()))
    }

    /// The symbols due at `close` (see [`FundingFollower::due`]).
    pub fn due_at(&self, close: i64) -> Vec<String> {
        self.symbols
            .keys()
            .filter(|s| self.due(s, close))
            .cloned()
            .collect()
    }

    /// Where the next fetch of `symbol` starts: after the last rate fetched, else
    /// [`HISTORY_MS`] before `first_close`.
    pub fn since(&self, symbol: &str, first_close: i64) -> i64 {
        self.symbols
            .get(symbol)
            .and_then(|t| t.last)
            .map_or(first_close.saturating_sub(HISTORY_MS), |l| l + 1)
    }

    /// Records a fetch of `symbol` made at market time `close`; returns the rates after the
    /// last one known, in time order.
    pub fn fetched(
        &mut self,
        symbol: &str,
        close: i64,
        result: Result<Vec<(i64, f64)>, ExchangeError>,
    ) -> Vec<(i64, f64)> {
        let Some(t) = self.symbols.get_mut(symbol) else {
            return Vec::new();
        };
        let miss = |t: &mut Track| {
            t.misses = t.misses.saturating_add(1);
            let wait = (MINUTE << (t.misses - 1).min(6)).min(HOUR);
            t.retry_at = Some(close.saturating_add(wait));
        };
        match result {
            Ok(mut rows) => {
                rows.sort_by_key(|r| r.0);
                rows.dedup_by_key(|r| r.0);
                rows.retain(|r| t.last.is_none_or(|l| r.0 > l));
                if rows.is_empty() {
                    miss(t);
                } else {
                    for r in &rows {
                        t.prev = t.last;
                        t.last = Some(r.0);
                    }
                    t.misses = 0;
                    t.retry_at = None;
                }
                rows
            }
            Err(e) if e.class() == ErrorClass::Rejected => {
                tracing::error!(symbol, error = %e, "the exchange refuses this symbol's funding rates: its funding inputs stay missing");
                t.refused = Some(e.to_string());
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(symbol, error = %e, misses = t.misses, "cannot fetch funding rates; trying again later");
                miss(t);
                Vec::new()
            }
        }
    }

    /// Why the exchange cannot give funding rates, when it refused them for every symbol
    /// followed (`None` while any symbol may still get them, or before any was asked).
    pub fn unavailable(&self) -> Option<String> {
        let mut why = None;
        for t in self.symbols.values() {
            why = Some(t.refused.clone()?);
        }
        why
    }
}

/// `symbol`'s funding rates from `since` on (`GET /fapi/v1/fundingRate`, paged), as the
/// funding inputs read them (`qt_models::dataset::funding_rate_value`, the training path's
/// conversion).
pub async fn fetch(
    client: &BinanceClient,
    symbol: &str,
    since: i64,
) -> Result<Vec<(i64, f64)>, ExchangeError> {
    let mut out = Vec::new();
    let mut from = since;
    for _ in 0..MAX_PAGES {
        let rows = client
            .funding_rate_history(
                symbol,
                HistoryRange {
                    start_time: Some(from),
                    end_time: None,
                    limit: Some(PAGE),
                },
            )
            .await?;
        let full = rows.len() >= usize::from(PAGE);
        let mut last = None;
        for r in rows
            .iter()
            .filter(|r| r.symbol == symbol && r.funding_time >= from)
        {
            last = Some(r.funding_time);
            if let Some(rate) = qt_models::dataset::funding_rate_value(r.funding_rate) {
                out.push((r.funding_time, rate));
            }
        }
        match last {
            Some(l) if full => from = l + 1,
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> ExchangeError {
        ExchangeError::Api {
            status: 400,
            code: -1121,
            msg: "Invalid symbol.".into(),
            fence: None,
        }
    }

    #[test]
    fn a_symbol_is_due_at_its_next_funding_time_and_retried_with_backoff_when_nothing_came() {
        let mut f = FundingFollower::default();
        f.add("BTCUSDT");
        assert!(f.due("BTCUSDT", 0), "nothing known: due at once");
        assert!(!f.due("ETHUSDT", 0), "not followed");
        assert_eq!(f.since("BTCUSDT", 40 * 24 * HOUR), 9 * 24 * HOUR);
        let got = f.fetched("BTCUSDT", 9 * HOUR, Ok(vec![(8 * HOUR, 2e-4), (0, 1e-4)]));
        assert_eq!(got, vec![(0, 1e-4), (8 * HOUR, 2e-4)]);
        assert_eq!(f.since("BTCUSDT", 0), 8 * HOUR + 1);
        // Next at 16:00 (the 8-hour interval), not before.
        assert!(!f.due("BTCUSDT", 16 * HOUR - 1));
        assert!(f.due("BTCUSDT", 16 * HOUR));
        assert_eq!(f.due_at(16 * HOUR), vec!["BTCUSDT".to_owned()]);
        // Not listed yet: a minute later, then two, ...
        assert!(
            f.fetched("BTCUSDT", 16 * HOUR, Ok(vec![(8 * HOUR, 2e-4)]))
                .is_empty()
        );
        assert!(!f.due("BTCUSDT", 16 * HOUR + MINUTE - 1));
        assert!(f.due("BTCUSDT", 16 * HOUR + MINUTE));
        let e = ExchangeError::Connect("down".into());
        assert!(f.fetched("BTCUSDT", 16 * HOUR + MINUTE, Err(e)).is_empty());
        assert!(!f.due("BTCUSDT", 16 * HOUR + 3 * MINUTE - 1));
        let got = f.fetched(
            "BTCUSDT",
            16 * HOUR + 3 * MINUTE,
            Ok(vec![(16 * HOUR, 3e-4)]),
        );
        assert_eq!(got, vec![(16 * HOUR, 3e-4)]);
        assert!(!f.due("BTCUSDT", 24 * HOUR - 1));
        assert!(f.due("BTCUSDT", 24 * HOUR));
        // A 4-hourly symbol is due every 4 hours.
        f.add("SOLUSDT");
        f.fetched("SOLUSDT", HOUR, Ok(vec![(0, 1e-4), (4 * HOUR, 1e-4)]));
        assert!(f.due("SOLUSDT", 8 * HOUR));
        assert_eq!(f.unavailable(), None);
    }

    #[test]
    fn funding_is_unavailable_only_when_the_exchange_refused_every_symbol() {
        let mut f = FundingFollower::default();
        assert_eq!(f.unavailable(), None, "nothing asked yet");
        f.add("BTCUSDT");
        f.add("ETHUSDT");
        f.fetched("BTCUSDT", 0, Err(refused()));
        assert!(!f.due("BTCUSDT", i64::MAX), "refused: not asked again");
        assert_eq!(f.unavailable(), None, "ETHUSDT may still get its rates");
        f.fetched("ETHUSDT", 0, Err(ExchangeError::Connect("down".into())));
        assert_eq!(f.unavailable(), None, "a failure that may heal");
        f.fetched("ETHUSDT", 0, Err(refused()));
        let why = f.unavailable().expect("refused everywhere");
        assert!(why.contains("Invalid symbol"), "{why}");
        f.remove("ETHUSDT");
        f.remove("BTCUSDT");
        assert_eq!(f.unavailable(), None);
    }
}
