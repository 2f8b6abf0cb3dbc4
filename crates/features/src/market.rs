//! The market factor: BTC's and ETH's recent returns and volatility as inputs of every symbol,
//! and the symbol's strength against BTC.
//!
//! **No look-ahead, whatever the arrival order.** A symbol's candle opening at `t` reads the
//! reference's candle opening *before* `t` (normally `t − interval`), never the one opening at
//! `t`: live, the reference's candle of the same minute may arrive after the symbol's, so using
//! it would make a decision depend on which WebSocket message came first, and a backtest that
//! merged candles by time would see what the bot could not. A reference value older than
//! [`MAX_STALE_CANDLES`] candles, or one not warmed up yet, is missing: its features are 0 and
//! `market_known` says how many of the two references were known (0, 0.5 or 1). Nothing is ever
//! filled from a later candle.
//!
//! The live path ([`MarketFactor`] fed candle by candle) and the batch path
//! ([`crate::batch_universe`]) run this same code, so they give identical values.

use std::collections::VecDeque;

use qt_candles::Candle;

use crate::FeatureConfig;
use crate::indicators::{Ring, RollingStats};

/// The reference symbols of the market factor, in the order of their features.
pub const MARKET_REFERENCES: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

/// A reference value is used for a candle at most this many candles after it opened.
pub const MAX_STALE_CANDLES: i64 = 3;

/// Values of each reference a live [`MarketFactor`] keeps: more than the 1,500 candles of
/// history a service warms up on.
pub const LIVE_HISTORY: usize = 2_048;

/// Names of the market-factor features, in their order in the feature vector.
pub const MARKET_NAMES: [&str; 11] = [
    // BTC: log return over 12 and 48 candles, close / close a day earlier - 1, and the sample
    // std of its 1-candle log returns over 48 candles
    "btc_ret_12",
    "btc_ret_48",
    "btc_change_24h",
    "btc_rv_48",
    // the same for ETH
    "eth_ret_12",
    "eth_ret_48",
    "eth_change_24h",
    "eth_rv_48",
    // the symbol's ret_48 and change_24h minus BTC's (0 when BTC is not known)
    "rel_ret_48_btc",
    "rel_change_24h_btc",
    // share of the two references known at this candle: 0, 0.5 or 1
    "market_known",
];

const PER_REFERENCE: usize = 4;

/// One reference symbol's values, by the open time of the candle they were computed on.
#[derive(Debug, Clone)]
struct Reference {
    closes: Ring,
    rv_48: RollingStats,
    last_open_time: Option<i64>,
    /// Values of the latest candles, oldest first; at most `keep` of them.
    recent: VecDeque<(i64, [f64; PER_REFERENCE])>,
    keep: usize,
}

impl Reference {
    fn new(day: usize, keep: usize) -> Self {
        Reference {
            closes: Ring::new(day.max(48) + 1),
            rv_48: RollingStats::new(48),
            last_open_time: None,
            recent: VecDeque::new(),
            keep,
        }
    }

    fn update(&mut self, candle: &Candle, day: usize) {
        if self.last_open_time.is_some_and(|t| candle.open_time <= t) {
            return;
        }
        self.last_open_time = Some(candle.open_time);
        let c = candle.close_f64();
        let prev = self.closes.back(0);
        self.closes.push(c);
        let rv = prev.and_then(|p| {
            let r1 = if p > 0.0 && c > 0.0 {
                (c / p).ln()
            } else {
                0.0
            };
            self.rv_48.update(r1)
        });
        let log_ret = |k: usize| {
            self.closes.back(k).map(|past| {
                if past > 0.0 && c > 0.0 {
                    (c / past).ln()
                } else {
                    0.0
                }
            })
        };
        let values = (|| {
            let day_ago = self.closes.back(day)?;
            Some([
                log_ret(12)?,
                log_ret(48)?,
                if day_ago > 0.0 {
                    c / day_ago - 1.0
                } else {
                    0.0
                },
                rv?.1,
            ])
        })();
        if let Some(values) = values {
            if self.recent.len() == self.keep {
                self.recent.pop_front();
            }
            self.recent.push_back((candle.open_time, values));
        }
    }

    /// The values of the latest candle opening before `open_time`, if it is recent enough.
    fn before(&self, open_time: i64, interval_ms: i64) -> Option<[f64; PER_REFERENCE]> {
        let at = self.recent.partition_point(|(t, _)| *t < open_time);
        let (t, values) = self.recent.get(at.checked_sub(1)?)?;
        (open_time - t <= MAX_STALE_CANDLES * interval_ms).then_some(*values)
    }
}

/// The market factor's state: each reference symbol's recent values.
#[derive(Debug, Clone)]
pub struct MarketFactor {
    config: FeatureConfig,
    references: [Reference; 2],
}

impl MarketFactor {
    /// For a live service: keeps each reference's last [`LIVE_HISTORY`] values, so a symbol
    /// warmed up on its history after the references were (trading-bot warms one symbol at a
    /// time, references first) reads the same values as the batch path.
    pub fn new(config: FeatureConfig) -> Self {
        Self::keeping(config, LIVE_HISTORY)
    }

    /// Keeps the last `keep` values of each reference (the batch path keeps them all).
    pub(crate) fn keeping(config: FeatureConfig, keep: usize) -> Self {
        let day = config.day_candles();
        MarketFactor {
            config,
            references: [Reference::new(day, keep), Reference::new(day, keep)],
        }
    }

    /// Whether a symbol is one of [`MARKET_REFERENCES`].
    pub fn is_reference(symbol: &str) -> bool {
        MARKET_REFERENCES.contains(&symbol)
    }

    /// Takes a closed candle of any symbol; only the references' change the state. A candle
    /// not after the reference's previous one is ignored.
    pub fn update(&mut self, symbol: &str, candle: &Candle) {
        let day = self.config.day_candles();
        if let Some(i) = MARKET_REFERENCES.iter().position(|r| *r == symbol) {
            self.references[i].update(candle, day);
        }
    }

    /// The market features of a symbol's candle opening at `open_time`, whose own `ret_48`
    /// and `change_24h` are given, in the order of [`MARKET_NAMES`].
    pub fn values(&self, open_time: i64, ret_48: f64, change_24h: f64) -> [f64; 11] {
        let mut out = [0.0; 11];
        let mut known = 0.0;
        for (i, r) in self.references.iter().enumerate() {
            if let Some(v) = r.before(open_time, self.config.interval_ms) {
                out[i * PER_REFERENCE..(i + 1) * PER_REFERENCE].copy_from_slice(&v);
                known += 0.5;
                if i == 0 {
                    out[8] = ret_48 - v[1];
                    out[9] = change_24h - v[2];
                }
            }
        }
        out[10] = known;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_candles::Decimal;

    fn candle(open_time: i64, close: i64) -> Candle {
        let p = Decimal::from(close);
        Candle {
            open_time,
            open: p,
            high: p,
            low: p,
            close: p,
            volume: Decimal::ONE,
            quote_volume: p,
            trades: 1,
        }
    }

    const M5: i64 = 300_000;

    #[test]
    fn a_symbol_reads_the_reference_candle_before_its_own_never_the_same_minute() {
        let cfg = FeatureConfig::default();
        let mut m = MarketFactor::new(cfg);
        // BTC rises by 1 each candle from 1000; ETH is absent.
        let n = 300;
        for k in 0..n {
            m.update("BTCUSDT", &candle(k * M5, 1000 + k));
        }
        // A symbol's candle at the last BTC candle's open time reads the one before it.
        let v = m.values((n - 1) * M5, 0.0, 0.0);
        let last_used = (1000 + n - 2) as f64;
        assert!((v[0] - (last_used / (last_used - 12.0)).ln()).abs() < 1e-12);
        assert!((v[2] - (last_used / (last_used - 288.0) - 1.0)).abs() < 1e-12);
        assert_eq!(v[10], 0.5, "BTC known, ETH not");
        assert_eq!(&v[4..8], &[0.0; 4]);
        assert!((v[8] - (0.0 - v[1])).abs() < 1e-15);
        // The next candle reads the last one; far later, BTC is stale and missing.
        let next = m.values(n * M5, 0.0, 0.0);
        assert!(next[0] > 0.0 && next[0] != v[0]);
        let stale = m.values((n + 3) * M5, 0.0, 0.0);
        assert_eq!(stale[10], 0.0);
        assert_eq!(stale, [0.0; 11]);
    }

    #[test]
    fn a_reference_is_missing_until_it_has_a_day_of_candles() {
        let mut m = MarketFactor::new(FeatureConfig::default());
        for k in 0..288 {
            m.update("ETHUSDT", &candle(k * M5, 100));
            assert_eq!(m.values((k + 1) * M5, 0.0, 0.0)[10], 0.0, "{k}");
        }
        m.update("ETHUSDT", &candle(288 * M5, 100));
        assert_eq!(m.values(289 * M5, 0.0, 0.0)[10], 0.5);
    }
}
