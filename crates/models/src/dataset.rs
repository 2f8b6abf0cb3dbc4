//! Dataset builder: features (the live engine's batch path) and labels from the live exits
//! per candle ([`crate::labels`]), and a chronological split with a purge gap.

use qt_candles::Candle;
use qt_events::SignalAction;
use std::collections::BTreeMap;

use qt_features::{
    ContextInputs, FeatureConfig, N_FEATURES, batch_with_context, feature_index, market_history,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::ModelError;
use crate::labels::{LabelConfig, Labeller, Outcome, Outcomes, exit_outcomes};

/// The funding inputs of settled funding histories by symbol (`(funding time ms, rate)`, as
/// `qt_candles::read_funding_dir` and the backtest's funding configuration hold them).
pub fn funding_inputs(history: &BTreeMap<String, Vec<(i64, Decimal)>>) -> ContextInputs {
    ContextInputs::from_funding(history.iter().map(|(s, rates)| {
        (
            s.as_str(),
            rates
                .iter()
                .filter_map(|(t, r)| Some((*t, funding_rate_value(*r)?)))
                .collect(),
        )
    }))
}

/// A funding rate as the funding inputs read it: the one conversion of the training path
/// ([`funding_inputs`]) and of trading-bot's live rates, so both hold the same `f64`.
pub fn funding_rate_value(rate: Decimal) -> Option<f64> {
    rate.to_f64()
}

/// One symbol's candles.
#[derive(Debug, Clone)]
pub struct Series {
    pub symbol: String,
    pub interval_ms: i64,
    pub candles: Vec<Candle>,
}

/// Labelled rows of every series, in per-series time order.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub features: Vec<[f64; N_FEATURES]>,
    pub labels: Vec<SignalAction>,
    /// How a long and a short entered after each row end under the exit plan.
    pub outcomes: Vec<Outcomes>,
    /// The settings the labels and outcomes were computed with.
    pub labeling: LabelConfig,
    pub candles: Vec<Candle>,
    /// Index into `symbols`.
    pub symbol_of: Vec<u16>,
    pub symbols: Vec<String>,
    pub interval_ms: i64,
}

/// Train and test row indices, chronological with a purge gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    /// First open time of the test period.
    pub split_time_ms: i64,
    /// Train rows whose label window reaches into the test period were dropped.
    pub purged: usize,
}

/// A dataset whose rows are known but whose outcomes (and labels) are computed only for the
/// rows asked for ([`Dataset::partly_labelled`]); the others hold NaN returns and HOLD until
/// [`PartlyLabelled::complete`] computes them. Only the exit choice uses it, for the plans
/// whose rows it reads on the calibration slice alone.
#[derive(Debug)]
pub(crate) struct PartlyLabelled {
    ds: Dataset,
    /// Each row's candle index in its series.
    candle_at: Vec<usize>,
    /// Whether each row's outcomes are computed.
    known: Vec<bool>,
}

impl PartlyLabelled {
    /// The rows; outcomes and labels are valid only for rows passed to [`Self::complete`].
    pub(crate) fn dataset(&self) -> &Dataset {
        &self.ds
    }

    /// Computes the outcomes and labels of `rows` (by the same code as [`Dataset::labelled`]).
    ///
    /// # Errors
    /// [`ModelError::Data`] if a row's trades did not close within the horizon, which
    /// [`Labeller::surely_closes`] rules out (an internal error).
    pub(crate) fn complete(&mut self, p: &Prepared<'_>, rows: &[usize]) -> Result<(), ModelError> {
        let series = p.series;
        let mut wanted: Vec<Vec<usize>> = vec![Vec::new(); series.len()];
        for &r in rows {
            if !self.known[r] {
                wanted[usize::from(self.ds.symbol_of[r])].push(r);
            }
        }
        let (ds, candle_at) = (&self.ds, &self.candle_at);
        let done = per_series(series.len(), p.threads, &|i| {
            if wanted[i].is_empty() {
                return Vec::new();
            }
            let s = &series[i];
            let l = Labeller::new(&s.candles, &p.volatility[i], s.interval_ms, &ds.labeling);
            wanted[i]
                .iter()
                .map(|&r| (r, l.outcomes(candle_at[r])))
                .collect::<Vec<_>>()
        });
        let (costs, interval_ms) = (self.ds.labeling.costs, self.ds.interval_ms);
        for (r, o) in done.into_iter().flatten() {
            let Some(o) = o else {
                return Err(ModelError::Data(format!(
                    "internal: row {r}'s trades outlived the horizon under a time stop that closes them"
                )));
            };
            self.ds.outcomes[r] = o;
            self.ds.labels[r] = o.label(&costs, interval_ms);
            self.known[r] = true;
        }
        Ok(())
    }
}

/// Every series' features and the daily realized volatility that picks each row's ladder,
/// computed once so that datasets labelled with different exits ([`Dataset::labelled`]) share
/// them.
#[derive(Debug)]
pub struct Prepared<'a> {
    series: &'a [Series],
    features: Vec<Vec<Option<[f64; N_FEATURES]>>>,
    volatility: Vec<Vec<f64>>,
    threads: usize,
}

impl Prepared<'_> {
    /// The series the features were computed from.
    pub fn series(&self) -> &[Series] {
        self.series
    }
}

/// Runs `work(i)` for each of `n` series on up to `threads` threads (one series per thread at a
/// time); results in series order.
fn per_series<T: Send + Default + Clone>(
    n: usize,
    threads: usize,
    work: &(dyn Fn(usize) -> T + Sync),
) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    let mut out: Vec<T> = vec![T::default(); n];
    let per = n.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (t, chunk) in out.chunks_mut(per).enumerate() {
            scope.spawn(move || {
                for (k, slot) in chunk.iter_mut().enumerate() {
                    *slot = work(t * per + k);
                }
            });
        }
    });
    out
}

impl Dataset {
    /// Builds the rows of every series, using up to `threads` threads (one series per thread
    /// at a time). All series must have the same interval.
    pub fn build(
        series: &[Series],
        labeling: &LabelConfig,
        threads: usize,
    ) -> Result<Self, ModelError> {
        labeling.validate()?;
        Self::labelled(&Self::prepare(series, threads)?, labeling)
    }

    /// Computes the features of every series (the market factor read from the reference
    /// series among them) and the volatility that picks the ladder, for [`Dataset::labelled`].
    /// The funding inputs are missing (see [`Dataset::prepare_with_context`]).
    pub fn prepare(series: &[Series], threads: usize) -> Result<Prepared<'_>, ModelError> {
        Self::prepare_with_context(series, threads, &ContextInputs::default())
    }

    /// [`Dataset::prepare`] with each symbol's funding inputs read from `context` (by
    /// publication time: a row reads only the rates published by its candle's close).
    pub fn prepare_with_context<'a>(
        series: &'a [Series],
        threads: usize,
        context: &ContextInputs,
    ) -> Result<Prepared<'a>, ModelError> {
        let Some(first) = series.first() else {
            return Err(ModelError::Data("no series".to_string()));
        };
        if series.iter().any(|s| s.interval_ms != first.interval_ms) {
            return Err(ModelError::Data(
                "series have different intervals".to_string(),
            ));
        }
        if series.len() > usize::from(u16::MAX) {
            return Err(ModelError::Data("too many series".to_string()));
        }
        let fcfg = FeatureConfig {
            interval_ms: first.interval_ms,
        };
        // The market factor every symbol reads, from the reference series among them.
        let refs: Vec<(&str, &[Candle])> = series
            .iter()
            .map(|s| (s.symbol.as_str(), s.candles.as_slice()))
            .collect();
        let market = &market_history(fcfg, &refs);
        // The daily realized volatility that picks the ladder, as the backtester and
        // exit-brain compute it: rv_24h scaled by √(candles per day).
        let rv = feature_index("rv_24h").unwrap_or(0);
        let day_scale = (fcfg.day_candles() as f64).sqrt();
        let both = per_series(series.len(), threads, &|i| {
            let features: Vec<Option<[f64; N_FEATURES]>> = batch_with_context(
                fcfg,
                market,
                context.funding(&series[i].symbol),
                &series[i].candles,
            )
            .into_iter()
            .map(|f| f.map(|f| f.values))
            .collect();
            let volatility: Vec<f64> = features
                .iter()
                .map(|f| f.as_ref().map_or(f64::NAN, |f| f[rv] * day_scale))
                .collect();
            (features, volatility)
        });
        let (features, volatility) = both.into_iter().unzip();
        Ok(Prepared {
            series,
            features,
            volatility,
            threads,
        })
    }

    /// The rows of prepared series labelled with `labeling`'s exits: a candle is a row when it
    /// has features and both its trades end within the horizon.
    pub fn labelled(p: &Prepared<'_>, labeling: &LabelConfig) -> Result<Self, ModelError> {
        labeling.validate()?;
        let series = p.series;
        let Some(first) = series.first() else {
            return Err(ModelError::Data("no series".to_string()));
        };
        let outcomes = per_series(series.len(), p.threads, &|i| {
            exit_outcomes(
                &series[i].candles,
                &p.volatility[i],
                series[i].interval_ms,
                labeling,
            )
        });
        let total: usize = outcomes
            .iter()
            .zip(&p.features)
            .map(|(o, f)| {
                o.iter()
                    .zip(f)
                    .filter(|(o, f)| o.is_some() && f.is_some())
                    .count()
            })
            .sum();
        let mut ds = Dataset {
            features: Vec::with_capacity(total),
            labels: Vec::with_capacity(total),
            outcomes: Vec::with_capacity(total),
            labeling: labeling.clone(),
            candles: Vec::with_capacity(total),
            symbol_of: Vec::with_capacity(total),
            symbols: series.iter().map(|s| s.symbol.clone()).collect(),
            interval_ms: first.interval_ms,
        };
        for (i, (outs, feats)) in outcomes.iter().zip(&p.features).enumerate() {
            for ((o, f), c) in outs.iter().zip(feats).zip(&series[i].candles) {
                let (Some(o), Some(f)) = (o, f) else {
                    continue;
                };
                ds.features.push(*f);
                ds.labels.push(o.label(&labeling.costs, first.interval_ms));
                ds.outcomes.push(*o);
                ds.candles.push(*c);
                ds.symbol_of.push(i as u16);
            }
        }
        Ok(ds)
    }

    /// The rows [`Dataset::labelled`] gives for `labeling`, with each row's outcomes computed
    /// only where needed: a row the time stop surely closes within the horizon
    /// ([`Labeller::surely_closes`]) is a row whatever its trades do, so its outcomes wait for
    /// [`PartlyLabelled::complete`]; any other candle is run through the exits now, since only
    /// its outcomes tell whether it is a row. The rows, their order, features and candles are
    /// [`Dataset::labelled`]'s, so anything computed from the rows' times (the split, the
    /// calibration slice) is the same.
    pub(crate) fn partly_labelled(
        p: &Prepared<'_>,
        labeling: &LabelConfig,
    ) -> Result<PartlyLabelled, ModelError> {
        labeling.validate()?;
        let series = p.series;
        let Some(first) = series.first() else {
            return Err(ModelError::Data("no series".to_string()));
        };
        let rows = per_series(series.len(), p.threads, &|i| {
            let s = &series[i];
            let l = Labeller::new(&s.candles, &p.volatility[i], s.interval_ms, labeling);
            let mut out: Vec<(usize, Option<Outcomes>)> = Vec::new();
            for (j, f) in p.features[i].iter().enumerate() {
                if f.is_none() || !l.can_enter(j) {
                    continue;
                }
                if l.surely_closes(j) {
                    out.push((j, None));
                } else if let Some(o) = l.outcomes(j) {
                    out.push((j, Some(o)));
                }
            }
            out
        });
        let total: usize = rows.iter().map(Vec::len).sum();
        let mut part = PartlyLabelled {
            ds: Dataset {
                features: Vec::with_capacity(total),
                labels: Vec::with_capacity(total),
                outcomes: Vec::with_capacity(total),
                labeling: labeling.clone(),
                candles: Vec::with_capacity(total),
                symbol_of: Vec::with_capacity(total),
                symbols: series.iter().map(|s| s.symbol.clone()).collect(),
                interval_ms: first.interval_ms,
            },
            candle_at: Vec::with_capacity(total),
            known: Vec::with_capacity(total),
        };
        let unknown = Outcome {
            gross_return: f64::NAN,
            held: 0,
        };
        for (i, rows) in rows.iter().enumerate() {
            for &(j, o) in rows {
                let (Some(f), Some(c)) = (p.features[i][j], series[i].candles.get(j)) else {
                    continue;
                };
                let ds = &mut part.ds;
                ds.features.push(f);
                ds.labels.push(o.map_or(SignalAction::Hold, |o| {
                    o.label(&labeling.costs, first.interval_ms)
                }));
                ds.outcomes.push(o.unwrap_or(Outcomes {
                    long: unknown,
                    short: unknown,
                }));
                ds.candles.push(*c);
                ds.symbol_of.push(i as u16);
                part.candle_at.push(j);
                part.known.push(o.is_some());
            }
        }
        Ok(part)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Chronological split: the last `test_fraction` of the time span (by row count) is the
    /// test set; a train row is kept only if its label window (`horizon` candles after it)
    /// ends before the test period starts, so no label of the train set saw a test candle.
    pub fn split(&self, test_fraction: f64, horizon: usize) -> Result<Split, ModelError> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(ModelError::Params(format!(
                "test fraction {test_fraction} not in (0, 1)"
            )));
        }
        if self.len() < 10 {
            return Err(ModelError::Data(format!("{} rows", self.len())));
        }
        let mut times: Vec<i64> = self.candles.iter().map(|c| c.open_time).collect();
        times.sort_unstable();
        let cut = ((times.len() as f64) * (1.0 - test_fraction)) as usize;
        let split_time_ms = times[cut.min(times.len() - 1)];
        let purge_ms = horizon as i64 * self.interval_ms;
        let mut split = Split {
            train: Vec::new(),
            test: Vec::new(),
            split_time_ms,
            purged: 0,
        };
        for (i, c) in self.candles.iter().enumerate() {
            if c.open_time >= split_time_ms {
                split.test.push(i);
            } else if c.open_time + purge_ms < split_time_ms {
                split.train.push(i);
            } else {
                split.purged += 1;
            }
        }
        if split.train.is_empty() || split.test.is_empty() {
            return Err(ModelError::Data("split leaves an empty side".to_string()));
        }
        Ok(split)
    }

    /// The features of `rows`, column-major (as forust wants them).
    pub fn columns(&self, rows: &[usize]) -> Vec<f64> {
        let mut out = vec![0.0; rows.len() * N_FEATURES];
        for (r, &i) in rows.iter().enumerate() {
            let f = &self.features[i];
            for j in 0..N_FEATURES {
                out[j * rows.len() + r] = f[j];
            }
        }
        out
    }

    /// `rows` in time order (then by symbol), as a live bot would see them.
    pub fn time_ordered(&self, rows: &[usize]) -> Vec<usize> {
        let mut r = rows.to_vec();
        r.sort_by_key(|&i| (self.candles[i].open_time, self.symbol_of[i]));
        r
    }
}
