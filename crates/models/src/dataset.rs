//! Dataset builder: features (the live engine's batch path) and labels from the live exits
//! per candle ([`crate::labels`]), and a chronological split with a purge gap.

use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::{
    FeatureConfig, MarketFactor, N_FEATURES, batch_with_market, feature_index, market_history,
};

use crate::ModelError;
use crate::labels::{LabelConfig, Outcomes, exit_outcomes};

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

fn rows_of(
    series: &Series,
    market: &MarketFactor,
    cfg: &LabelConfig,
) -> Vec<([f64; N_FEATURES], Outcomes, Candle)> {
    let fcfg = FeatureConfig {
        interval_ms: series.interval_ms,
    };
    let features = batch_with_market(fcfg, market, &series.candles);
    // The daily realized volatility that picks the ladder, as the backtester and exit-brain
    // compute it: rv_24h scaled by √(candles per day).
    let rv = feature_index("rv_24h").unwrap_or(0);
    let day_scale = (fcfg.day_candles() as f64).sqrt();
    let volatility: Vec<f64> = features
        .iter()
        .map(|f| f.as_ref().map_or(f64::NAN, |f| f.values[rv] * day_scale))
        .collect();
    let outcomes = exit_outcomes(&series.candles, &volatility, series.interval_ms, cfg);
    features
        .iter()
        .zip(outcomes)
        .zip(&series.candles)
        .filter_map(|((f, l), c)| Some((f.as_ref()?.values, l?, *c)))
        .collect()
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
        let threads = threads.clamp(1, series.len());
        // The market factor every symbol reads, from the reference series among them.
        let refs: Vec<(&str, &[Candle])> = series
            .iter()
            .map(|s| (s.symbol.as_str(), s.candles.as_slice()))
            .collect();
        let market = &market_history(
            FeatureConfig {
                interval_ms: first.interval_ms,
            },
            &refs,
        );
        let mut per_series: Vec<Vec<_>> = vec![Vec::new(); series.len()];
        std::thread::scope(|scope| {
            for (t, chunk) in per_series
                .chunks_mut(series.len().div_ceil(threads))
                .enumerate()
            {
                let start = t * series.len().div_ceil(threads);
                scope.spawn(move || {
                    for (k, out) in chunk.iter_mut().enumerate() {
                        *out = rows_of(&series[start + k], market, labeling);
                    }
                });
            }
        });
        let total: usize = per_series.iter().map(Vec::len).sum();
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
        for (i, rows) in per_series.into_iter().enumerate() {
            for (f, o, c) in rows {
                ds.features.push(f);
                ds.labels.push(o.label(&labeling.costs, first.interval_ms));
                ds.outcomes.push(o);
                ds.candles.push(c);
                ds.symbol_of.push(i as u16);
            }
        }
        Ok(ds)
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
