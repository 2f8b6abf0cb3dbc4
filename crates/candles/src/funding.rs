//! Funding rates of perpetual futures: Binance's funding-rate history files and the schedule
//! the backtester and the simulated exchange charge by.
//!
//! A history file is Binance's `SYMBOL-fundingRate.csv` (`calc_time,funding_interval_hours,
//! last_funding_rate`, header optional; also the 2-column `time,rate` form). Where a symbol's
//! history covers a time (from its first to its last entry) its entries are the funding times
//! and rates; elsewhere funding falls every `interval_hours` at multiples of the interval since
//! 00:00 UTC (Binance's 8-hourly funding at 00:00, 08:00 and 16:00) at a default rate.
//!
//! A position open at a funding time pays `notional × rate`: longs pay when the rate is
//! positive, shorts when it is negative, and the other side earns it. Charging is the caller's;
//! this module only says when and at what rate.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;

use crate::CandleError;

/// Milliseconds in an hour.
const HOUR_MS: i64 = 3_600_000;

/// Reads a Binance funding-rate CSV (`calc_time,funding_interval_hours,last_funding_rate`,
/// header optional; also the 2-column `time,rate` form): `(funding time ms, rate)` sorted by
/// time, one entry per time.
///
/// # Errors
/// [`CandleError::Io`] when unreadable, [`CandleError::Parse`] naming the line that does not
/// parse.
pub fn read_funding_file(path: &Path) -> Result<Vec<(i64, Decimal)>, CandleError> {
    let text = std::fs::read_to_string(path).map_err(|source| CandleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |line: usize, message: String| CandleError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let first = cols.first().copied().unwrap_or_default();
        let Ok(time) = first.parse::<i64>() else {
            if n == 0 {
                continue; // the header
            }
            return Err(parse_err(
                n + 1,
                format!("funding time {first:?} is not ms since the epoch"),
            ));
        };
        let raw = match cols.len() {
            2 => cols[1],
            3.. => cols[2],
            _ => "",
        };
        let rate = Decimal::from_scientific(raw)
            .or_else(|_| raw.parse::<Decimal>())
            .map_err(|_| parse_err(n + 1, format!("funding rate {raw:?} is not a number")))?;
        out.push((time, rate));
    }
    out.sort_by_key(|r| r.0);
    out.dedup_by_key(|r| r.0);
    Ok(out)
}

/// Reads every `SYMBOL-fundingRate.csv` in `dir`, by upper-case symbol.
///
/// # Errors
/// As [`read_funding_file`], or [`CandleError::Io`] when the folder cannot be listed.
pub fn read_funding_dir(dir: &Path) -> Result<BTreeMap<String, Vec<(i64, Decimal)>>, CandleError> {
    let io = |source| CandleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(symbol) = name.strip_suffix("-fundingRate.csv") {
            out.insert(symbol.to_uppercase(), read_funding_file(&path)?);
        }
    }
    Ok(out)
}

/// One symbol's funding times and rates: its history where it covers the time, else the
/// default rate every `interval_hours` from 00:00 UTC. Pure and cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FundingSchedule<'a> {
    history: &'a [(i64, Decimal)],
    default_rate: Decimal,
    period_ms: i64,
}

impl<'a> FundingSchedule<'a> {
    /// `history` sorted by time (as [`read_funding_file`] returns it; may be empty);
    /// `interval_hours` below 1 counts as 1.
    pub fn new(history: &'a [(i64, Decimal)], default_rate: Decimal, interval_hours: u32) -> Self {
        Self {
            history,
            default_rate,
            period_ms: i64::from(interval_hours.max(1)) * HOUR_MS,
        }
    }

    /// Whether the history covers `t` (between its first and last entry, inclusive).
    fn covered(&self, t: i64) -> bool {
        match (self.history.first(), self.history.last()) {
            (Some(a), Some(b)) => t >= a.0 && t <= b.0,
            _ => false,
        }
    }

    /// The first funding time strictly after `after`, with its rate.
    pub fn next_after(&self, after: i64) -> (i64, Decimal) {
        let from_history = self
            .history
            .get(self.history.partition_point(|r| r.0 <= after))
            .copied();
        let p = self.period_ms;
        let scheduled = after.div_euclid(p).saturating_add(1).saturating_mul(p);
        match from_history {
            // Inside the history's span only its own entries count (the next one exists: it
            // is at the latest the last entry, which is at or after `scheduled`).
            Some(h) if self.covered(scheduled) => h,
            // Outside it, whichever comes first: a history entry before the next scheduled
            // time (the history starts before it), or the scheduled time at the default rate.
            Some(h) if h.0 < scheduled => h,
            _ => (scheduled, self.default_rate),
        }
    }

    /// Every funding time in `(after, until]` with its rate, in time order.
    pub fn between(&self, after: i64, until: i64) -> impl Iterator<Item = (i64, Decimal)> + '_ {
        let mut t = after;
        std::iter::from_fn(move || {
            if t >= until {
                return None;
            }
            let next = self.next_after(t);
            if next.0 > until {
                t = until;
                return None;
            }
            t = next.0;
            Some(next)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    const H: i64 = HOUR_MS;

    #[test]
    fn without_history_funding_falls_every_interval_from_midnight_utc() {
        let s = FundingSchedule::new(&[], dec!(0.0001), 8);
        assert_eq!(s.next_after(7 * H), (8 * H, dec!(0.0001)));
        // Strictly after: a funding time itself is not "next".
        assert_eq!(s.next_after(8 * H), (16 * H, dec!(0.0001)));
        assert_eq!(s.next_after(-1), (0, dec!(0.0001)));
        let four = FundingSchedule::new(&[], dec!(0.0002), 4);
        assert_eq!(four.next_after(5 * H), (8 * H, dec!(0.0002)));
        assert_eq!(
            s.between(0, 24 * H).map(|r| r.0 / H).collect::<Vec<_>>(),
            vec![8, 16, 24]
        );
    }

    #[test]
    fn history_is_used_where_it_covers_the_time_and_the_default_elsewhere() {
        // A 4-hourly history from 08:00 to 16:00.
        let h = [
            (8 * H, dec!(0.00035)),
            (12 * H, dec!(0.0003)),
            (16 * H, dec!(-0.0002)),
        ];
        let s = FundingSchedule::new(&h, dec!(0.0001), 8);
        let all: Vec<(i64, Decimal)> = s.between(-1, 32 * H).map(|(t, r)| (t / H, r)).collect();
        assert_eq!(
            all,
            vec![
                (0, dec!(0.0001)),
                (8, dec!(0.00035)),
                (12, dec!(0.0003)),
                (16, dec!(-0.0002)),
                (24, dec!(0.0001)),
                (32, dec!(0.0001)),
            ]
        );
        // Off-schedule history entries before the next scheduled time come first.
        let odd = [(3 * H, dec!(0.0005)), (5 * H, dec!(0.0006))];
        let s = FundingSchedule::new(&odd, dec!(0.0001), 8);
        let all: Vec<i64> = s.between(-1, 16 * H).map(|(t, _)| t / H).collect();
        assert_eq!(all, vec![0, 3, 5, 8, 16]);
    }

    #[test]
    fn binance_files_parse_with_their_header_and_scientific_rates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("btcusdt-fundingRate.csv");
        std::fs::write(
            &p,
            "calc_time,funding_interval_hours,last_funding_rate\n\
             1746086400000,8,5.755e-05\n1746057600000,8,3.519e-05\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("BTCUSDT-5m.csv"), "not funding").unwrap();
        let all = read_funding_dir(dir.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all["BTCUSDT"],
            vec![
                (1_746_057_600_000, dec!(0.00003519)),
                (1_746_086_400_000, dec!(0.00005755))
            ]
        );
        std::fs::write(&p, "calc_time,x,rate\n1746086400000,8,abc\n").unwrap();
        let err = read_funding_file(&p).unwrap_err().to_string();
        assert!(err.contains(":2: funding rate \"abc\""), "{err}");
        std::fs::write(&p, "1746086400000,1e-4\nnoon,1e-4\n").unwrap();
        let err = read_funding_file(&p).unwrap_err().to_string();
        assert!(err.contains(":2: funding time \"noon\""), "{err}");
    }
}
