use qt_events::{CandleClosed, Decimal};
use rust_decimal::prelude::ToPrimitive;

use crate::{CandleError, interval_name};

/// One closed candle (OHLCV) of one symbol at one interval. The symbol and interval live with
/// the series, not in each candle.
///
/// `quote_volume` and `trades` are zero when the source did not have them (the six-column
/// files in `data/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Candle {
    /// Open time, ms since the epoch (UTC); a candle is identified by it.
    pub open_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Volume in the base asset.
    pub volume: Decimal,
    /// Volume in the quote asset (zero when unknown).
    pub quote_volume: Decimal,
    /// Number of trades (zero when unknown).
    pub trades: u64,
}

#[inline]
fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

impl Candle {
    /// A candle with the five OHLCV values and no quote volume or trade count.
    pub fn new(
        open_time: i64,
        open: Decimal,
        high: Decimal,
        low: Decimal,
        close: Decimal,
        volume: Decimal,
    ) -> Self {
        Candle {
            open_time,
            open,
            high,
            low,
            close,
            volume,
            quote_volume: Decimal::ZERO,
            trades: 0,
        }
    }

    /// Open as `f64`, for features only.
    #[inline]
    pub fn open_f64(&self) -> f64 {
        f(self.open)
    }
    /// High as `f64`, for features only.
    #[inline]
    pub fn high_f64(&self) -> f64 {
        f(self.high)
    }
    /// Low as `f64`, for features only.
    #[inline]
    pub fn low_f64(&self) -> f64 {
        f(self.low)
    }
    /// Close as `f64`, for features only.
    #[inline]
    pub fn close_f64(&self) -> f64 {
        f(self.close)
    }
    /// Volume as `f64`, for features only.
    #[inline]
    pub fn volume_f64(&self) -> f64 {
        f(self.volume)
    }

    /// True when nothing traded in the candle (Binance emits these; they are real candles).
    pub fn is_zero_volume(&self) -> bool {
        self.volume.is_zero()
    }

    /// Close time in ms: `open_time + interval_ms - 1`, as Binance reports it.
    pub fn close_time(&self, interval_ms: i64) -> i64 {
        self.open_time + interval_ms - 1
    }

    /// The wire event for this candle.
    pub fn to_event(&self, symbol: &str, interval_ms: i64) -> Result<CandleClosed, CandleError> {
        Ok(CandleClosed {
            symbol: symbol.to_string(),
            interval: interval_name(interval_ms)?,
            open_time: self.open_time,
            close_time: self.close_time(interval_ms),
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            quote_volume: self.quote_volume,
            trades: self.trades,
        })
    }
}

impl From<&CandleClosed> for Candle {
    fn from(e: &CandleClosed) -> Self {
        Candle {
            open_time: e.open_time,
            open: e.open,
            high: e.high,
            low: e.low,
            close: e.close,
            volume: e.volume,
            quote_volume: e.quote_volume,
            trades: e.trades,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn candle_round_trips_through_the_wire_event() {
        let c = Candle {
            open_time: 1_700_000_100_000,
            open: dec!(100.5),
            high: dec!(101),
            low: dec!(99.25),
            close: dec!(100.75),
            volume: dec!(12.5),
            quote_volume: dec!(1256.3),
            trades: 42,
        };
        let e = c
            .to_event("BTCUSDT", 300_000)
            .expect("5m is a valid interval");
        assert_eq!(e.interval, "5m");
        assert_eq!(e.close_time, 1_700_000_399_999);
        assert_eq!(e.symbol, "BTCUSDT");
        assert_eq!(Candle::from(&e), c);
    }

    #[test]
    fn f64_accessors_match_the_decimal_values() {
        let c = Candle::new(0, dec!(1.5), dec!(2.25), dec!(0.125), dec!(1.75), dec!(0));
        assert_eq!(c.open_f64(), 1.5);
        assert_eq!(c.high_f64(), 2.25);
        assert_eq!(c.low_f64(), 0.125);
        assert_eq!(c.close_f64(), 1.75);
        assert!(c.is_zero_volume());
    }
}
