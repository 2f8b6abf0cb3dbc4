//! Candles thinned for drawing: a symbol's candles over a window merged into at most a few
//! hundred bars of a round width (5 minutes, 15, an hour, 4 hours, a day, …).

use qt_candles::Candle;
use rust_decimal::Decimal;

const MINUTE: i64 = 60_000;
const WIDTHS: [i64; 12] = [
    MINUTE,
    5 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    60 * MINUTE,
    2 * 60 * MINUTE,
    4 * 60 * MINUTE,
    6 * 60 * MINUTE,
    12 * 60 * MINUTE,
    24 * 60 * MINUTE,
    3 * 24 * 60 * MINUTE,
    7 * 24 * 60 * MINUTE,
];

/// One drawn bar: open time, open, high, low, close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub t: i64,
    pub o: Decimal,
    pub h: Decimal,
    pub l: Decimal,
    pub c: Decimal,
}

/// A symbol's bars over a window, each `bar_ms` wide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartSeries {
    pub symbol: String,
    pub bar_ms: i64,
    pub bars: Vec<Bar>,
}

/// The candles of `symbol` opening in `[from, to)` merged into bars of the smallest round
/// width (at least the candles' own `interval_ms`) that gives at most `max_bars`.
pub fn chart_series(
    symbol: &str,
    candles: &[Candle],
    interval_ms: i64,
    (from, to): (i64, i64),
    max_bars: usize,
) -> ChartSeries {
    let lo = candles.partition_point(|c| c.open_time < from);
    let hi = candles.partition_point(|c| c.open_time < to);
    let window = &candles[lo..hi.max(lo)];
    let span = match (window.first(), window.last()) {
        (Some(a), Some(b)) => b.open_time + interval_ms - a.open_time,
        _ => 0,
    };
    let max_bars = max_bars.max(1) as i64;
    let bar_ms = WIDTHS
        .iter()
        .copied()
        .filter(|w| *w >= interval_ms && w % interval_ms.max(1) == 0)
        .find(|w| span / w <= max_bars)
        .unwrap_or_else(|| interval_ms.max(1) * (span / interval_ms.max(1) / max_bars + 1));
    let mut bars: Vec<Bar> = Vec::new();
    for c in window {
        let t = c.open_time.div_euclid(bar_ms) * bar_ms;
        match bars.last_mut() {
            Some(b) if b.t == t => {
                b.h = b.h.max(c.high);
                b.l = b.l.min(c.low);
                b.c = c.close;
            }
            _ => bars.push(Bar {
                t,
                o: c.open,
                h: c.high,
                l: c.low,
                c: c.close,
            }),
        }
    }
    ChartSeries {
        symbol: symbol.to_owned(),
        bar_ms,
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candles_merge_into_round_bars_keeping_the_extremes() {
        let c = |i: i64, o: i64, h: i64, l: i64, cl: i64| {
            Candle::new(
                i * 300_000,
                Decimal::from(o),
                Decimal::from(h),
                Decimal::from(l),
                Decimal::from(cl),
                Decimal::ONE,
            )
        };
        let candles: Vec<Candle> = (0..12)
            .map(|i| c(i, 10 + i, 20 + i, 5 + i, 11 + i))
            .collect();
        let s = chart_series("X", &candles, 300_000, (0, i64::MAX), 4);
        assert_eq!(s.bar_ms, 15 * MINUTE);
        assert_eq!(s.bars.len(), 4);
        assert_eq!(
            s.bars[1],
            Bar {
                t: 900_000,
                o: Decimal::from(13),
                h: Decimal::from(25),
                l: Decimal::from(8),
                c: Decimal::from(16)
            }
        );
        let all = chart_series("X", &candles, 300_000, (0, i64::MAX), 100);
        assert_eq!(all.bar_ms, 300_000);
        assert_eq!(all.bars.len(), 12);
        let part = chart_series("X", &candles, 300_000, (600_000, 1_200_000), 100);
        assert_eq!(part.bars.len(), 2);
    }
}
