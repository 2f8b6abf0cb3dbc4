use qt_events::Decimal;

use crate::{Candle, CandleError};

/// Missing candles between two consecutive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Open time of the last candle before the gap.
    pub before: i64,
    /// Open time of the first candle after the gap.
    pub after: i64,
    /// How many candles are missing.
    pub missing: i64,
}

impl Gap {
    /// Length of the hole in ms (`missing * interval`).
    pub fn duration_ms(&self) -> i64 {
        self.after - self.before
    }
}

/// Every place where consecutive candles are more than one interval apart.
pub fn gaps(candles: &[Candle], interval_ms: i64) -> Vec<Gap> {
    if interval_ms <= 0 {
        return Vec::new();
    }
    candles
        .windows(2)
        .filter_map(|w| {
            let step = w[1].open_time - w[0].open_time;
            (step > interval_ms).then(|| Gap {
                before: w[0].open_time,
                after: w[1].open_time,
                missing: step / interval_ms - 1,
            })
        })
        .collect()
}

/// Fills gaps with flat zero-volume candles at the previous close (what Binance itself shows
/// for an interval without trades). Candles off the interval grid are kept as they are.
pub fn fill_gaps(candles: &[Candle], interval_ms: i64) -> Vec<Candle> {
    let mut out = Vec::with_capacity(candles.len());
    for c in candles {
        if let Some(prev) = out.last().copied()
            && interval_ms > 0
        {
            let prev: Candle = prev;
            let mut t = prev.open_time + interval_ms;
            while t < c.open_time {
                out.push(Candle::new(
                    t,
                    prev.close,
                    prev.close,
                    prev.close,
                    prev.close,
                    Decimal::ZERO,
                ));
                t += interval_ms;
            }
        }
        out.push(*c);
    }
    out
}

/// Resamples candles of `from_ms` into candles of `to_ms` (a whole multiple), buckets aligned to
/// UTC boundaries (`open_time - open_time mod to_ms`; the epoch starts on a UTC midnight).
///
/// A bucket takes the first open, the highest high, the lowest low, the last close and the
/// summed volumes. A first bucket that the input starts inside of, and a last bucket that the
/// input ends inside of, are dropped (part of their data lies outside the input, and the last
/// one has not closed); a bucket that is short because of an exchange halt is kept with the
/// candles it has. Input must be in increasing
/// open-time order.
pub fn resample(candles: &[Candle], from_ms: i64, to_ms: i64) -> Result<Vec<Candle>, CandleError> {
    if from_ms <= 0 || to_ms <= 0 || to_ms % from_ms != 0 {
        return Err(CandleError::Invalid(format!(
            "cannot resample {from_ms} ms candles into {to_ms} ms"
        )));
    }
    let per_bucket = to_ms / from_ms;
    let mut buckets: Vec<(Candle, i64)> =
        Vec::with_capacity(candles.len() / per_bucket as usize + 2);
    for c in candles {
        let start = c.open_time - c.open_time.rem_euclid(to_ms);
        match buckets.last_mut() {
            Some((b, n)) if b.open_time == start => {
                b.high = b.high.max(c.high);
                b.low = b.low.min(c.low);
                b.close = c.close;
                b.volume += c.volume;
                b.quote_volume += c.quote_volume;
                b.trades += c.trades;
                *n += 1;
            }
            Some((b, _)) if b.open_time > start => {
                return Err(CandleError::Invalid(format!(
                    "candles out of order at open time {}",
                    c.open_time
                )));
            }
            _ => buckets.push((
                Candle {
                    open_time: start,
                    ..*c
                },
                1,
            )),
        }
    }
    // The input starts inside its first bucket: that bucket lacks data from before the input.
    if let (Some(first), Some((b, n))) = (candles.first(), buckets.first())
        && first.open_time != b.open_time
        && *n < per_bucket
    {
        buckets.remove(0);
    }
    // The input ends inside its last bucket: that bucket has not closed.
    if let (Some(last), Some((b, n))) = (candles.last(), buckets.last())
        && last.open_time + from_ms != b.open_time + to_ms
        && *n < per_bucket
    {
        buckets.pop();
    }
    Ok(buckets.into_iter().map(|(b, _)| b).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn c(t: i64, o: Decimal, h: Decimal, l: Decimal, cl: Decimal, v: Decimal) -> Candle {
        Candle::new(t, o, h, l, cl, v)
    }

    #[test]
    fn gaps_report_the_missing_candles() {
        let s = [
            c(0, dec!(1), dec!(1), dec!(1), dec!(1), dec!(1)),
            c(60, dec!(1), dec!(1), dec!(1), dec!(1), dec!(1)),
            c(240, dec!(1), dec!(1), dec!(1), dec!(1), dec!(1)),
        ];
        let g = gaps(&s, 60);
        assert_eq!(
            g,
            vec![Gap {
                before: 60,
                after: 240,
                missing: 2
            }]
        );
        let filled = fill_gaps(&s, 60);
        assert_eq!(filled.len(), 5);
        assert!(gaps(&filled, 60).is_empty());
        assert!(filled[2].is_zero_volume());
        assert_eq!(filled[3].open_time, 180);
    }

    #[test]
    fn resample_aggregates_ohlcv_on_aligned_buckets_and_drops_partial_edges() {
        // 1-minute candles from 00:01 to 00:10; 5-minute buckets at 0, 5, 10.
        let m = 60_000;
        let s: Vec<Candle> = (1..=10)
            .map(|i| {
                let p = Decimal::from(i);
                c(
                    i * m,
                    p,
                    p + dec!(0.5),
                    p - dec!(0.5),
                    p + dec!(0.25),
                    dec!(2),
                )
            })
            .collect();
        let r = resample(&s, m, 5 * m).expect("5m is a multiple of 1m");
        // Bucket [0,5m) lacks minute 0 (leading, dropped); bucket [5m,10m) is full;
        // bucket [10m,15m) has one candle (trailing, dropped).
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0],
            c(5 * m, dec!(5), dec!(9.5), dec!(4.5), dec!(9.25), dec!(10))
        );
        assert!(resample(&s, m, 7 * m / 2).is_err());
    }

    #[test]
    fn resample_keeps_an_inner_bucket_shortened_by_a_halt() {
        let m = 60_000;
        let times = [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14];
        let s: Vec<Candle> = times
            .iter()
            .map(|&i| c(i * m, dec!(1), dec!(2), dec!(1), dec!(1), dec!(1)))
            .collect();
        let r = resample(&s, m, 5 * m).expect("valid");
        assert_eq!(
            r.iter().map(|b| b.open_time / m).collect::<Vec<_>>(),
            vec![0, 5, 10]
        );
        assert_eq!(r[1].volume, dec!(2));
    }
}
