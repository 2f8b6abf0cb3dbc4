//! Funding of perpetual positions, as Binance charges it: at each funding time, a position
//! open at that time pays `notional × rate` (longs pay when the rate is positive, shorts when
//! it is negative; the other side earns it). Rates come from Binance's funding-rate history
//! (`SYMBOL-fundingRate.csv`: `calc_time,funding_interval_hours,last_funding_rate`) where it
//! is loaded, else a configured rate every `interval_hours` (funding times at multiples of the
//! interval since 00:00 UTC, as Binance schedules 8-hourly funding at 00:00, 08:00 and 16:00).
//! The file reader and the schedule are `qt-candles`' (the simulated exchange charges by the
//! same ones).

use std::collections::BTreeMap;
use std::path::Path;

use qt_candles::FundingSchedule;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::BacktestError;

/// How funding is charged. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FundingConfig {
    /// Rate per funding interval where no history covers the time: 0.0001 (0.01 %), the
    /// rate Binance's formula gives with a zero premium (its interest-rate component).
    pub default_rate: Decimal,
    /// Hours between funding times where no history covers the time. Default 8.
    pub interval_hours: u32,
    /// Funding history by symbol: (funding time ms, rate), in time order. Filled from files
    /// (see [`read_funding_file`]), never from JSON.
    #[serde(skip)]
    pub history: BTreeMap<String, Vec<(i64, Decimal)>>,
}

impl Default for FundingConfig {
    fn default() -> Self {
        Self {
            default_rate: Decimal::new(1, 4),
            interval_hours: 8,
            history: BTreeMap::new(),
        }
    }
}

/// Reads a Binance funding-rate CSV (`calc_time,funding_interval_hours,last_funding_rate`,
/// header optional; also the 2-column `time,rate` form), sorted by time.
///
/// # Errors
/// [`BacktestError::Io`] when unreadable, [`BacktestError::Config`] naming the line that does
/// not parse.
pub fn read_funding_file(path: &Path) -> Result<Vec<(i64, Decimal)>, BacktestError> {
    qt_candles::read_funding_file(path).map_err(from_candles)
}

/// The reader lives in `qt-candles` (the simulated exchange reads the same files).
fn from_candles(e: qt_candles::CandleError) -> BacktestError {
    match e {
        qt_candles::CandleError::Io { path, source } => BacktestError::io(&path, source),
        other => BacktestError::Config(other.to_string()),
    }
}

/// Loads every `SYMBOL-fundingRate.csv` in `dir` into `cfg.history`; returns how many.
///
/// # Errors
/// As [`read_funding_file`], or the folder cannot be listed.
pub fn load_funding_dir(dir: &Path, cfg: &mut FundingConfig) -> Result<usize, BacktestError> {
    let found = qt_candles::read_funding_dir(dir).map_err(from_candles)?;
    let n = found.len();
    cfg.history.extend(found);
    Ok(n)
}

/// Walks the funding times of several symbols forward as candles pass (the schedule is
/// [`qt_candles::FundingSchedule`], shared with the simulated exchange).
#[derive(Debug, Clone)]
pub(crate) struct FundingClock<'a> {
    syms: Vec<SymFunding<'a>>,
}

#[derive(Debug, Clone)]
struct SymFunding<'a> {
    schedule: FundingSchedule<'a>,
    /// The next funding time not yet due, with its rate; `None` before the first candle.
    next: Option<(i64, Decimal)>,
}

impl<'a> FundingClock<'a> {
    /// One schedule per symbol, in the order given.
    pub(crate) fn new<'s>(cfg: &'a FundingConfig, symbols: impl Iterator<Item = &'s str>) -> Self {
        let syms = symbols
            .map(|s| SymFunding {
                schedule: FundingSchedule::new(
                    cfg.history.get(s).map_or(&[][..], Vec::as_slice),
                    cfg.default_rate,
                    cfg.interval_hours,
                ),
                next: None,
            })
            .collect();
        Self { syms }
    }

    /// The summed rate of symbol `k`'s funding times in `[t, t + interval)`, for the candle
    /// opening at `t`; `None` when none falls in it. Call once per candle, in time order
    /// (funding times in a gap between candles are skipped).
    pub(crate) fn due(&mut self, k: usize, t: i64, interval_ms: i64) -> Option<Decimal> {
        let s = self.syms.get_mut(k)?;
        let end = t + interval_ms;
        let mut next = match s.next {
            Some(n) if n.0 >= t => n,
            _ => s.schedule.next_after(t - 1),
        };
        let mut rate = None::<Decimal>;
        while next.0 < end {
            *rate.get_or_insert(Decimal::ZERO) += next.1;
            next = s.schedule.next_after(next.0);
        }
        s.next = Some(next);
        rate
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    const H: i64 = 3_600_000;
    const M5: i64 = 300_000;

    #[test]
    fn default_funding_falls_every_eight_hours_from_midnight_utc() {
        let cfg = FundingConfig::default();
        let mut clock = FundingClock::new(&cfg, ["BTCUSDT"].into_iter());
        // From 07:00 to 17:00 at 5m: funding at 08:00 and 16:00 only.
        let mut due = Vec::new();
        let mut t = 7 * H;
        while t < 17 * H {
            if let Some(r) = clock.due(0, t, M5) {
                due.push((t, r));
            }
            t += M5;
        }
        assert_eq!(due, vec![(8 * H, dec!(0.0001)), (16 * H, dec!(0.0001))]);
    }

    #[test]
    fn history_rates_are_used_where_they_cover_the_time_and_the_default_elsewhere() {
        let mut cfg = FundingConfig::default();
        cfg.history.insert(
            "ETHUSDT".into(),
            vec![(8 * H, dec!(0.00035)), (16 * H, dec!(-0.0002))],
        );
        let mut clock = FundingClock::new(&cfg, ["BTCUSDT", "ETHUSDT"].into_iter());
        let mut eth = Vec::new();
        let mut t = 0;
        while t < 25 * H {
            // BTC is walked too: symbols do not disturb each other.
            let _ = clock.due(0, t, H);
            if let Some(r) = clock.due(1, t, H) {
                eth.push((t / H, r));
            }
            t += H;
        }
        // 00:00 is before the history: default; 08:00 and 16:00 from the file; 24:00 after it.
        assert_eq!(
            eth,
            vec![
                (0, dec!(0.0001)),
                (8, dec!(0.00035)),
                (16, dec!(-0.0002)),
                (24, dec!(0.0001))
            ]
        );
    }

    #[test]
    fn binance_funding_rate_files_parse_with_their_header_and_scientific_rates() {
        let dir = std::env::temp_dir().join(format!("qt-funding-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("BTCUSDT-fundingRate.csv");
        std::fs::write(
            &p,
            "calc_time,funding_interval_hours,last_funding_rate\n\
             1746086400000,8,5.755e-05\n1746057600000,8,3.519e-05\n",
        )
        .unwrap();
        let mut cfg = FundingConfig::default();
        assert_eq!(load_funding_dir(&dir, &mut cfg).unwrap(), 1);
        assert_eq!(
            cfg.history["BTCUSDT"],
            vec![
                (1_746_057_600_000, dec!(0.00003519)),
                (1_746_086_400_000, dec!(0.00005755))
            ]
        );
        std::fs::write(&p, "calc_time,x,rate\n1746086400000,8,abc\n").unwrap();
        let err = read_funding_file(&p).unwrap_err().to_string();
        assert!(err.contains(":2: funding rate \"abc\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_repo_copy_of_binance_btc_funding_history_loads_every_eight_hourly_rate() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/futures/funding");
        let mut cfg = FundingConfig::default();
        assert_eq!(load_funding_dir(&dir, &mut cfg).unwrap(), 8);
        let btc = &cfg.history["BTCUSDT"];
        assert_eq!(btc.len(), 884);
        assert_eq!(btc[0], (1_746_057_600_000, dec!(0.00003519)));
        assert!(btc.windows(2).all(|w| w[1].0 - w[0].0 == 8 * H));
        // The sum of the file's rates (awk over the third column: 0.0399822).
        let sum: Decimal = btc.iter().map(|r| r.1).sum();
        assert_eq!(sum.round_dp(7), dec!(0.0399822));
    }
}
