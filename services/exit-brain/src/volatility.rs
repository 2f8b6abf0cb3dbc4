//! Realized volatility per symbol from closed candles: the standard deviation of close-to-close
//! returns over a rolling window, scaled to one day (the scale `qt-exits` thresholds use, the same
//! as the backtester's `rv_24h × √candles-per-day`).

use std::collections::{HashMap, VecDeque};

use qt_events::{CandleClosed, Decimal};
use rust_decimal::prelude::ToPrimitive;

/// Rolling closes of one interval for every symbol.
#[derive(Debug, Clone)]
pub struct Volatility {
    interval: String,
    window: usize,
    day_scale: f64,
    closes: HashMap<String, VecDeque<(i64, f64)>>,
}

/// Fewer returns than this give no estimate (the calm ladder applies).
const MIN_RETURNS: usize = 12;

impl Volatility {
    /// `interval` is a Binance interval name; an unknown one is treated as 5m.
    pub fn new(interval: &str, window: usize) -> Self {
        let ms = interval_ms(interval).unwrap_or(300_000);
        Self {
            interval: interval.to_owned(),
            window: window.max(MIN_RETURNS + 1),
            day_scale: (86_400_000.0 / ms as f64).sqrt(),
            closes: HashMap::new(),
        }
    }

    /// Takes a closed candle of the configured interval (others are ignored). A candle seen again
    /// (same open time) replaces nothing, so redeliveries are harmless.
    pub fn on_candle(&mut self, c: &CandleClosed) {
        if c.interval != self.interval {
            return;
        }
        self.on_close(&c.symbol, c.open_time, c.close);
    }

    /// Takes the close of the configured interval's candle that opened at `open_time`; a candle
    /// not newer than the last one taken is ignored.
    pub fn on_close(&mut self, symbol: &str, open_time: i64, close: Decimal) {
        let Some(close) = close.to_f64().filter(|v| v.is_finite() && *v > 0.0) else {
            return;
        };
        let q = self.closes.entry(symbol.to_owned()).or_default();
        if q.back().is_some_and(|(t, _)| *t >= open_time) {
            return;
        }
        q.push_back((open_time, close));
        while q.len() > self.window + 1 {
            q.pop_front();
        }
    }

    /// The interval whose closes it takes.
    pub fn interval(&self) -> &str {
        &self.interval
    }

    /// How many closes make a full window.
    pub fn window(&self) -> usize {
        self.window + 1
    }

    /// Daily realized volatility of `symbol` as a fraction, or NaN when too few candles were seen.
    pub fn of(&self, symbol: &str) -> f64 {
        let Some(q) = self.closes.get(symbol) else {
            return f64::NAN;
        };
        if q.len() < MIN_RETURNS + 1 {
            return f64::NAN;
        }
        let rets: Vec<f64> = q
            .iter()
            .zip(q.iter().skip(1))
            .map(|((_, a), (_, b))| b / a - 1.0)
            .collect();
        let n = rets.len() as f64;
        let mean = rets.iter().sum::<f64>() / n;
        let var = rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        var.sqrt() * self.day_scale
    }
}

fn interval_ms(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    };
    Some(n * unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(sym: &str, t: i64, close: i64) -> CandleClosed {
        let p = Decimal::new(close, 0);
        CandleClosed {
            symbol: sym.into(),
            interval: "5m".into(),
            open_time: t,
            close_time: t + 299_999,
            open: p,
            high: p,
            low: p,
            close: p,
            volume: Decimal::ONE,
            quote_volume: Decimal::ZERO,
            trades: 1,
        }
    }

    #[test]
    fn too_few_candles_give_no_estimate_and_a_choppy_series_gives_a_larger_one() {
        let mut v = Volatility::new("5m", 288);
        for i in 0..5 {
            v.on_candle(&candle("A", i * 300_000, 100));
        }
        assert!(v.of("A").is_nan());
        for i in 0..40 {
            v.on_candle(&candle("CALM", i * 300_000, 1000 + (i % 2)));
            v.on_candle(&candle("WILD", i * 300_000, 1000 + 30 * (i % 2)));
        }
        let (calm, wild) = (v.of("CALM"), v.of("WILD"));
        assert!(calm > 0.0 && wild > calm * 10.0, "{calm} {wild}");
    }

    #[test]
    fn a_redelivered_candle_is_not_counted_twice() {
        let mut v = Volatility::new("5m", 288);
        for i in 0..20 {
            v.on_candle(&candle("A", i * 300_000, 100 + (i % 3)));
        }
        let before = v.of("A");
        v.on_candle(&candle("A", 19 * 300_000, 500));
        assert_eq!(before.to_bits(), v.of("A").to_bits());
    }
}
