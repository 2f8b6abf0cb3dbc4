//! Higher-timeframe context aggregated from the base candles: 1-hour bars (Wilder RSI 14,
//! EMA 12, ATR 14 of those bars) and 4-hour bars (the returns of the last two closed bars).
//!
//! A bar enters the indicators only once it is closed: at the base candle whose close is the
//! bar's end, or — when that candle is missing (a halt) — at the first candle of a later bar. A
//! first bar the input starts inside is dropped, as [`qt_candles::resample`] drops it. So the
//! values at a candle read that candle and earlier ones only, and the engine's live and batch
//! paths stay identical.
//!
//! The windows fit in the engine's one-day warm-up at 5m, 15m and 1m (24 hourly bars, six 4-hour
//! bars); until an indicator has its window (shorter history, long halts) its feature is neutral
//! (RSI 50, distances and returns 0), a value that reads nothing from the future.

use crate::indicators::{Atr, Ema, Ring, Rsi};

const HOUR_MS: i64 = 3_600_000;

/// Names of the higher-timeframe features, in their order in the feature vector.
pub const HTF_NAMES: [&str; 5] = [
    // Wilder RSI 14 of hourly closes, 0..100
    "rsi_14_1h",
    // close / EMA 12 of hourly closes - 1
    "ema12_dist_1h",
    // ATR 14 of hourly bars / close
    "atr_14_1h",
    // log return of the last closed 4-hour bar, and of the one before it
    "ret_4h_last",
    "ret_4h_prev",
];

/// A closed bar of a higher timeframe.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bar {
    high: f64,
    low: f64,
    close: f64,
}

/// Builds bars of `period_ms` from base candles and hands each closed bar on.
#[derive(Debug, Clone)]
struct Aggregator {
    period_ms: i64,
    /// The bar being built: its bucket start, whether it started at the bucket's start, and
    /// its high, low and last close so far.
    open: Option<(i64, bool, Bar)>,
}

impl Aggregator {
    fn new(period_ms: i64) -> Self {
        Aggregator {
            period_ms: period_ms.max(1),
            open: None,
        }
    }

    /// Takes one base candle; returns the bars it closes, oldest first (at most two: the
    /// previous bar cut short by a halt, and this candle's own bar when the candle ends it).
    fn update(
        &mut self,
        open_time: i64,
        close_time: i64,
        high: f64,
        low: f64,
        close: f64,
    ) -> [Option<Bar>; 2] {
        let bucket = open_time.div_euclid(self.period_ms) * self.period_ms;
        let mut closed = [None, None];
        match &mut self.open {
            Some((start, _, bar)) if *start == bucket => {
                bar.high = bar.high.max(high);
                bar.low = bar.low.min(low);
                bar.close = close;
            }
            previous => {
                if let Some((_, true, bar)) = previous.take() {
                    closed[0] = Some(bar);
                }
                *previous = Some((bucket, open_time == bucket, Bar { high, low, close }));
            }
        }
        if close_time >= bucket + self.period_ms
            && let Some((_, whole, bar)) = self.open.take()
            && whole
        {
            closed[1] = Some(bar);
        }
        closed
    }
}

/// The higher-timeframe state of one symbol.
#[derive(Debug, Clone)]
pub(crate) struct HigherTimeframes {
    hourly: Aggregator,
    rsi_1h: Rsi,
    ema_1h: Ema,
    atr_1h: Atr,
    last_rsi: Option<f64>,
    last_ema: Option<f64>,
    last_atr: Option<f64>,
    four_hourly: Aggregator,
    closes_4h: Ring,
}

impl HigherTimeframes {
    pub(crate) fn new() -> Self {
        HigherTimeframes {
            hourly: Aggregator::new(HOUR_MS),
            rsi_1h: Rsi::new(14),
            ema_1h: Ema::new(12),
            atr_1h: Atr::new(14),
            last_rsi: None,
            last_ema: None,
            last_atr: None,
            four_hourly: Aggregator::new(4 * HOUR_MS),
            closes_4h: Ring::new(3),
        }
    }

    /// Takes the next base candle (open and close time in ms; high, low, close).
    pub(crate) fn update(
        &mut self,
        open_time: i64,
        close_time: i64,
        high: f64,
        low: f64,
        close: f64,
    ) {
        for bar in self
            .hourly
            .update(open_time, close_time, high, low, close)
            .into_iter()
            .flatten()
        {
            self.last_rsi = self.rsi_1h.update(bar.close).or(self.last_rsi);
            self.last_ema = self.ema_1h.update(bar.close).or(self.last_ema);
            self.last_atr = self
                .atr_1h
                .update(bar.high, bar.low, bar.close)
                .or(self.last_atr);
        }
        for bar in self
            .four_hourly
            .update(open_time, close_time, high, low, close)
            .into_iter()
            .flatten()
        {
            self.closes_4h.push(bar.close);
        }
    }

    /// The features of [`HTF_NAMES`] at a candle closing at `close`.
    pub(crate) fn values(&self, close: f64) -> [f64; 5] {
        let ratio = |a: f64, b: f64| if b > 0.0 && a.is_finite() { a / b } else { 0.0 };
        let log_ret = |newer: Option<f64>, older: Option<f64>| match (newer, older) {
            (Some(n), Some(o)) if n > 0.0 && o > 0.0 => (n / o).ln(),
            _ => 0.0,
        };
        let c = |k| self.closes_4h.back(k);
        [
            self.last_rsi.unwrap_or(50.0),
            self.last_ema.map_or(0.0, |e| ratio(close, e) - 1.0),
            self.last_atr.map_or(0.0, |a| ratio(a, close)),
            log_ret(c(0), c(1)),
            log_ret(c(1), c(2)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M5: i64 = 300_000;

    fn feed(agg: &mut Aggregator, open_time: i64, close: f64) -> Vec<Bar> {
        agg.update(open_time, open_time + M5, close + 1.0, close - 1.0, close)
            .into_iter()
            .flatten()
            .collect()
    }

    #[test]
    fn an_hourly_bar_closes_with_its_last_five_minute_candle_and_a_partial_first_bar_is_dropped() {
        let mut agg = Aggregator::new(HOUR_MS);
        // Starts at 00:30: the 00:00 bar is partial and never comes out.
        for k in 6..12 {
            assert!(feed(&mut agg, k * M5, 100.0 + k as f64).is_empty());
        }
        // 01:00..01:55: closes at the candle opening 01:55 (closing 02:00).
        for k in 12..23 {
            assert!(feed(&mut agg, k * M5, 100.0 + k as f64).is_empty(), "{k}");
        }
        let bars = feed(&mut agg, 23 * M5, 123.0);
        assert_eq!(
            bars,
            vec![Bar {
                high: 124.0,
                low: 111.0,
                close: 123.0
            }]
        );
    }

    #[test]
    fn a_bar_cut_short_by_a_halt_closes_at_the_first_candle_of_a_later_bar() {
        let mut agg = Aggregator::new(HOUR_MS);
        for k in 12..20 {
            assert!(feed(&mut agg, k * M5, 100.0).is_empty());
        }
        // Halt from 01:40 to 02:10: the 01:00 bar ends at the 02:10 candle, which opens its own.
        let bars = feed(&mut agg, 26 * M5, 90.0);
        assert_eq!(bars.len(), 1);
        assert_eq!(bars[0].close, 100.0);
        // The 02:00 bar started inside (02:10): partial, dropped when 03:00 begins.
        for k in 27..36 {
            assert!(feed(&mut agg, k * M5, 90.0).is_empty());
        }
        assert!(feed(&mut agg, 36 * M5, 80.0).is_empty());
    }

    #[test]
    fn candles_as_long_as_the_bar_are_each_a_bar() {
        let mut agg = Aggregator::new(HOUR_MS);
        let h = HOUR_MS;
        for k in 0..5 {
            let bars: Vec<_> = agg
                .update(k * h, (k + 1) * h, 2.0, 1.0, 1.5)
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(bars.len(), 1);
        }
    }

    #[test]
    fn four_hour_returns_are_of_the_last_two_closed_bars() {
        let mut htf = HigherTimeframes::new();
        let h4 = 4 * HOUR_MS;
        // Three whole 4-hour bars of 5m candles closing at 100, 110, 99.
        for (b, close) in [100.0_f64, 110.0, 99.0].into_iter().enumerate() {
            for k in 0..48 {
                let t = b as i64 * h4 + k * M5;
                htf.update(t, t + M5, close, close, close);
            }
        }
        let v = htf.values(99.0);
        assert!((v[3] - (99.0_f64 / 110.0).ln()).abs() < 1e-12);
        assert!((v[4] - (110.0_f64 / 100.0).ln()).abs() < 1e-12);
        // Twelve hourly bars: RSI 14 not ready yet, so neutral; EMA 12 ready.
        assert_eq!(v[0], 50.0);
        assert!(v[1] != 0.0);
    }
}
