//! Funding-rate inputs: a perpetual's funding rate as the market published it.
//!
//! **Aligned by publication, never by the time a value describes.** Binance settles a funding
//! rate at its funding time; the rate counts as known [`FUNDING_PUBLISH_DELAY_MS`] after it (the
//! rule of `qt-context`'s history files). A candle's inputs are those known at its *close*, the
//! moment it is decided on: [`FundingSeries::values`] reads only rows published at or before
//! that time. A rate older than [`FUNDING_MAX_AGE_MS`] (a gap in the history, a feed that
//! stopped) is missing: every input is 0 and `funding_known` is 0. Nothing is filled from a
//! later row.
//!
//! The same [`FundingSeries`] serves the training path (a whole history loaded at once: rows
//! published after a candle's close are simply not read) and a live service (rows added with
//! [`FundingSeries::observe`] as they are published, or fetched from the exchange's history
//! with [`FundingSeries::fetched`] and held until a candle closes after their publication,
//! [`FundingSeries::release`]), so both give identical values.

use std::collections::{BTreeMap, VecDeque};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A settled funding rate counts as published this long after its funding time.
pub const FUNDING_PUBLISH_DELAY_MS: i64 = 60_000;

/// A funding rate published longer ago than this is missing (Binance funds every 8 h at most).
pub const FUNDING_MAX_AGE_MS: i64 = 12 * HOUR;

/// Rows a live series keeps: the z-score's window and a day more.
const KEEP_MS: i64 = 31 * DAY;

/// Names of the funding inputs, in their order in the feature vector.
pub const CONTEXT_NAMES: [&str; 5] = [
    // the last published funding rate (a fraction per funding interval)
    "funding_rate",
    // mean of the rates published over the last 3 days
    "funding_mean_3d",
    // (last rate - mean of the last 30 days' rates) / their sample std; 0 with fewer than 10
    "funding_z_30d",
    // hours from the candle's close to the next funding time (the interval between the last two
    // published funding times, 8 h when unknown)
    "funding_hours_to_next",
    // 1 when a funding rate is known at the candle's close, else 0 (and the others are 0)
    "funding_known",
];

/// Fewest rates the z-score is computed from.
const MIN_Z_RATES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq)]
struct FundingRow {
    published_at: i64,
    funding_time: i64,
    rate: f64,
}

/// One symbol's funding rates, in publication order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FundingSeries {
    rows: Vec<FundingRow>,
    /// Rates fetched live but not yet released: each waits for a candle that closes at or
    /// after its publication time ([`FundingSeries::release`]).
    pending: VecDeque<FundingRow>,
}

impl FundingSeries {
    /// A settled history: `(funding time ms, rate)` as in Binance's funding-rate files, each
    /// rate published [`FUNDING_PUBLISH_DELAY_MS`] after its funding time.
    pub fn from_settled(rates: impl IntoIterator<Item = (i64, f64)>) -> Self {
        let mut rows: Vec<FundingRow> = rates
            .into_iter()
            .filter(|(_, r)| r.is_finite())
            .map(|(t, rate)| FundingRow {
                published_at: t + FUNDING_PUBLISH_DELAY_MS,
                funding_time: t,
                rate,
            })
            .collect();
        rows.sort_by_key(|r| (r.published_at, r.funding_time));
        rows.dedup_by_key(|r| r.funding_time);
        FundingSeries {
            rows,
            pending: VecDeque::new(),
        }
    }

    /// A rate a live service fetched from the exchange's funding history (Binance's
    /// `fundingRate`, which lists a rate from its funding time): it counts as published
    /// [`FUNDING_PUBLISH_DELAY_MS`] after its funding time, as in [`FundingSeries::from_settled`],
    /// and is held back until [`FundingSeries::release`] reaches that time, so fetching it early
    /// changes no candle closing before. A rate for a funding time not after the last one fetched
    /// (a page fetched again) is ignored, and so is a non-finite one.
    pub fn fetched(&mut self, funding_time: i64, rate: f64) {
        if !rate.is_finite() {
            return;
        }
        let last = self.pending.back().or(self.rows.last());
        if last.is_some_and(|l| funding_time <= l.funding_time) {
            return;
        }
        self.pending.push_back(FundingRow {
            published_at: funding_time.saturating_add(FUNDING_PUBLISH_DELAY_MS),
            funding_time,
            rate,
        });
    }

    /// Makes the fetched rates published at or before `t` (a candle's close) part of the series,
    /// in order, as [`FundingSeries::observe`] does.
    pub fn release(&mut self, t: i64) {
        while let Some(r) = self.pending.front().copied() {
            if r.published_at > t {
                break;
            }
            self.pending.pop_front();
            self.observe(r.published_at, r.funding_time, r.rate);
        }
    }

    /// Fetched rates still waiting for their publication time.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A live service's rate, published at `published_at` for `funding_time`. A rate for a
    /// funding time not after the last one's, or published before the last one, is ignored (a
    /// redelivery); so is a non-finite rate or one "published" before its funding time.
    pub fn observe(&mut self, published_at: i64, funding_time: i64, rate: f64) {
        if !rate.is_finite() || published_at < funding_time {
            return;
        }
        if let Some(last) = self.rows.last()
            && (funding_time <= last.funding_time || published_at < last.published_at)
        {
            return;
        }
        self.rows.push(FundingRow {
            published_at,
            funding_time,
            rate,
        });
        // A live series only needs the z-score's window: drop what no window reads any more.
        let keep_from = published_at - KEEP_MS;
        let old = self.rows.partition_point(|r| r.published_at < keep_from);
        if old > 0 {
            self.rows.drain(..old);
        }
    }

    /// Rates held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The inputs known at `t` (a candle's close), in the order of [`CONTEXT_NAMES`].
    pub fn values(&self, t: i64) -> [f64; 5] {
        let n = self.rows.partition_point(|r| r.published_at <= t);
        let known = &self.rows[..n];
        let Some(last) = known.last() else {
            return [0.0; 5];
        };
        if t - last.published_at > FUNDING_MAX_AGE_MS {
            return [0.0; 5];
        }
        let since = |from: i64| {
            known
                .iter()
                .rev()
                .take_while(move |r| r.published_at > from)
        };
        let (sum3, n3) = since(t - 3 * DAY).fold((0.0, 0usize), |(s, k), r| (s + r.rate, k + 1));
        let (s, sq, n30) = since(t - 30 * DAY).fold((0.0, 0.0, 0usize), |(s, sq, k), r| {
            (s + r.rate, sq + r.rate * r.rate, k + 1)
        });
        let z = if n30 >= MIN_Z_RATES {
            let mean = s / n30 as f64;
            let var = ((sq - s * mean) / (n30 - 1) as f64).max(0.0);
            if var > 0.0 {
                (last.rate - mean) / var.sqrt()
            } else {
                0.0
            }
        } else {
            0.0
        };
        let interval = match known.len().checked_sub(2).map(|i| known[i]) {
            Some(prev) if (HOUR..=8 * HOUR).contains(&(last.funding_time - prev.funding_time)) => {
                last.funding_time - prev.funding_time
            }
            _ => 8 * HOUR,
        };
        let mut next = last.funding_time + interval;
        while next <= t {
            next += interval;
        }
        [
            last.rate,
            sum3 / n3.max(1) as f64,
            z,
            (next - t) as f64 / HOUR as f64,
            1.0,
        ]
    }
}

/// Every symbol's funding series: the context a universe's features read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextInputs {
    funding: BTreeMap<String, FundingSeries>,
}

impl ContextInputs {
    /// From settled funding histories by symbol (`(funding time ms, rate)`).
    pub fn from_funding<'a>(history: impl IntoIterator<Item = (&'a str, Vec<(i64, f64)>)>) -> Self {
        ContextInputs {
            funding: history
                .into_iter()
                .map(|(s, rates)| (s.to_owned(), FundingSeries::from_settled(rates)))
                .collect(),
        }
    }

    /// A symbol's funding series, if it has one.
    pub fn funding(&self, symbol: &str) -> Option<&FundingSeries> {
        self.funding.get(symbol)
    }

    /// A live rate of `symbol` (see [`FundingSeries::observe`]).
    pub fn observe_funding(
        &mut self,
        symbol: &str,
        published_at: i64,
        funding_time: i64,
        rate: f64,
    ) {
        self.funding.entry(symbol.to_owned()).or_default().observe(
            published_at,
            funding_time,
            rate,
        );
    }

    /// A rate of `symbol` fetched live (see [`FundingSeries::fetched`]).
    pub fn fetched_funding(&mut self, symbol: &str, funding_time: i64, rate: f64) {
        self.funding
            .entry(symbol.to_owned())
            .or_default()
            .fetched(funding_time, rate);
    }

    /// Releases `symbol`'s fetched rates published by `t` (see [`FundingSeries::release`]).
    pub fn release(&mut self, symbol: &str, t: i64) {
        if let Some(f) = self.funding.get_mut(symbol) {
            f.release(t);
        }
    }

    /// Forgets a symbol's funding rates (a symbol that leaves a live universe).
    pub fn forget(&mut self, symbol: &str) {
        self.funding.remove(symbol);
    }

    pub fn is_empty(&self) -> bool {
        self.funding.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8-hourly rates from 00:00 of day 0: rate k is `k × 1e-5`.
    fn eight_hourly(n: i64) -> FundingSeries {
        FundingSeries::from_settled((0..n).map(|k| (k * 8 * HOUR, k as f64 * 1e-5)))
    }

    #[test]
    fn a_rate_is_known_a_minute_after_its_funding_time_and_missing_when_stale() {
        let s = eight_hourly(3);
        assert_eq!(s.values(-1), [0.0; 5], "before any rate");
        assert_eq!(
            s.values(FUNDING_PUBLISH_DELAY_MS - 1),
            [0.0; 5],
            "not yet published"
        );
        let v = s.values(FUNDING_PUBLISH_DELAY_MS);
        assert_eq!(v[0], 0.0);
        assert_eq!(v[4], 1.0);
        assert_eq!(
            v[3],
            8.0 - 1.0 / 60.0,
            "8 h default interval, minus the minute"
        );
        // At 08:00 exactly the 08:00 rate is not known yet: still the 00:00 one.
        let at8 = s.values(8 * HOUR);
        assert_eq!(
            (at8[0], at8[3]),
            (0.0, 8.0),
            "the 08:00 funding is past at 08:00"
        );
        let after = s.values(16 * HOUR + 5 * 60_000);
        assert_eq!(after[0], 2e-5);
        assert!((after[1] - 1e-5).abs() < 1e-15, "mean of 0, 1e-5, 2e-5");
        assert!((after[3] - (8.0 - 5.0 / 60.0)).abs() < 1e-12);
        // The last rate was published at 16:01: stale after 28:01.
        assert_eq!(
            s.values(16 * HOUR + FUNDING_PUBLISH_DELAY_MS + FUNDING_MAX_AGE_MS)[4],
            1.0
        );
        assert_eq!(
            s.values(16 * HOUR + FUNDING_PUBLISH_DELAY_MS + FUNDING_MAX_AGE_MS + 1),
            [0.0; 5]
        );
    }

    #[test]
    fn the_z_score_needs_ten_rates_and_the_interval_follows_the_history() {
        let s = eight_hourly(9);
        assert_eq!(s.values(9 * 8 * HOUR)[2], 0.0, "nine rates: no z-score");
        let s = eight_hourly(40);
        let t = 39 * 8 * HOUR + FUNDING_PUBLISH_DELAY_MS;
        let v = s.values(t);
        // 30 days = 90 rates, all 40 are in: mean 19.5e-5, the last 39e-5.
        let rates: Vec<f64> = (0..40).map(|k| k as f64 * 1e-5).collect();
        let mean = rates.iter().sum::<f64>() / 40.0;
        let sd = (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 39.0).sqrt();
        assert!((v[2] - (39e-5 - mean) / sd).abs() < 1e-9, "{}", v[2]);
        // 3 days: the last 9 rates (published after t - 72 h).
        let mean3 = (31..40).map(|k| k as f64 * 1e-5).sum::<f64>() / 9.0;
        assert!((v[1] - mean3).abs() < 1e-15);
        // A 4-hourly history: the next funding is 4 h after the last.
        let s = FundingSeries::from_settled((0..3).map(|k| (k * 4 * HOUR, 1e-4)));
        assert_eq!(s.values(8 * HOUR + HOUR)[3], 3.0);
    }

    #[test]
    fn live_observations_give_the_settled_historys_values() {
        let settled = eight_hourly(200);
        let mut live = FundingSeries::default();
        for k in 0..200 {
            let t = k * 8 * HOUR;
            live.observe(t + FUNDING_PUBLISH_DELAY_MS, t, k as f64 * 1e-5);
            // a redelivery is ignored
            live.observe(t + 2 * FUNDING_PUBLISH_DELAY_MS, t, 1.0);
            let now = t + FUNDING_PUBLISH_DELAY_MS + 5 * 60_000;
            assert_eq!(live.values(now), settled.values(now), "rate {k}");
        }
        assert!(
            live.len() < 100,
            "a live series keeps only the windows it reads"
        );
    }

    #[test]
    fn rates_fetched_ahead_are_held_until_published_and_then_read_as_settled() {
        let settled = eight_hourly(200);
        let mut live = FundingSeries::default();
        // The whole history fetched at once (a start-up load), then the candles' closes.
        for k in 0..200 {
            live.fetched(k * 8 * HOUR, k as f64 * 1e-5);
        }
        // A page fetched again is ignored.
        live.fetched(5 * 8 * HOUR, 1.0);
        assert_eq!(live.pending(), 200);
        let mut t = 0;
        while t < 200 * 8 * HOUR {
            live.release(t);
            assert_eq!(live.values(t), settled.values(t), "at {t}");
            t += 5 * 60_000;
        }
        // At a funding time itself (before its publication) the rate is not read.
        let mut s = FundingSeries::default();
        s.fetched(0, 1e-4);
        s.fetched(8 * HOUR, 5e-4);
        s.release(8 * HOUR);
        assert_eq!(s.values(8 * HOUR)[0], 1e-4);
        assert_eq!(s.pending(), 1);
        s.release(8 * HOUR + FUNDING_PUBLISH_DELAY_MS);
        assert_eq!(s.values(8 * HOUR + FUNDING_PUBLISH_DELAY_MS)[0], 5e-4);
    }
}
