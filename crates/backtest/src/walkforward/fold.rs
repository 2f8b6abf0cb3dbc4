//! Each fold's model: trained on its window only, and switched in at its test start.

use qt_candles::Candle;
use qt_exits::ExitConfig;
use qt_features::FeatureVector;
use qt_models::dataset::{Dataset, Series};
use qt_models::ev::EvReport;
use qt_models::exit_choice::train_choosing_exits_lean;
use qt_models::{ExitChoice, Model, ModelArtifact, ModelKind, Signal};

use crate::BacktestError;
use crate::engine::SymbolSeries;

use super::*;

/// The model each symbol trades: fold `k`'s model from its test start on. A model that reads
/// the symbol's recent vectors ([`Model::memory`]) is fed the latest of them when it takes
/// over, as trading-bot does when it swaps a model in.
#[derive(Debug)]
pub(super) struct FoldModels {
    starts: Vec<i64>,
    models: Vec<Box<dyn Model>>,
    current: usize,
    /// The symbol's latest vectors, as many as the most any fold model reads (none for
    /// models without memory).
    recent: std::collections::VecDeque<(FeatureVector, Candle)>,
    memory: usize,
}

impl FoldModels {
    pub(super) fn new(starts: Vec<i64>, models: Vec<Box<dyn Model>>) -> Self {
        let memory = models.iter().map(|m| m.memory()).max().unwrap_or(0);
        Self {
            starts,
            models,
            current: 0,
            recent: std::collections::VecDeque::with_capacity(memory),
            memory,
        }
    }
}

impl Model for FoldModels {
    fn name(&self) -> &str {
        self.models[self.current].name()
    }
    fn version(&self) -> &str {
        self.models[self.current].version()
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        while self.current + 1 < self.starts.len()
            && candle.open_time >= self.starts[self.current + 1]
        {
            self.current += 1;
            let model = &mut self.models[self.current];
            let skip = self.recent.len().saturating_sub(model.memory());
            for (fv, c) in self.recent.iter().skip(skip) {
                model.predict_for(symbol, fv, c);
            }
        }
        if self.memory > 0 {
            if self.recent.len() == self.memory {
                self.recent.pop_front();
            }
            self.recent.push_back((*features, *candle));
        }
        self.models[self.current].predict_for(symbol, features, candle)
    }
    fn exits(&self) -> Option<&ExitConfig> {
        self.models[self.current].exits()
    }
    fn memory(&self) -> usize {
        self.memory
    }
}

/// A baseline traded with the exits of the fold model of the window the candle is in (the
/// random entries: only the entry decision differs from the strategy's).
#[derive(Debug)]
pub(super) struct WithFoldExits<M> {
    pub(super) starts: Vec<i64>,
    pub(super) exits: Vec<Option<ExitConfig>>,
    pub(super) current: usize,
    pub(super) inner: M,
}

impl<M: Model> Model for WithFoldExits<M> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn version(&self) -> &str {
        self.inner.version()
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        while self.current + 1 < self.starts.len()
            && candle.open_time >= self.starts[self.current + 1]
        {
            self.current += 1;
        }
        self.inner.predict_for(symbol, features, candle)
    }
    fn exits(&self) -> Option<&ExitConfig> {
        self.exits.get(self.current).and_then(Option::as_ref)
    }
}

/// A fold's model and what its training saw.
#[derive(Debug, Clone)]
pub struct TrainedFold {
    pub artifact: ModelArtifact,
    /// Labelled rows it was fit and validated on.
    pub train_rows: usize,
    /// Candles of the training window without a row: the feature warm-up, and the last
    /// `horizon` candles, whose label would read past the training data (the purge).
    pub purged_rows: usize,
    pub auc_buy: Option<f64>,
    pub auc_sell: Option<f64>,
    pub expected_value: Option<EvReport>,
    /// The exit plans tried on the validation slice and the one kept.
    pub exits: Option<ExitChoice>,
}

/// Trains fold `fold`'s model on its training window only (`[train_start, train_end)` of each
/// series), with the code clm trains with.
///
/// # Errors
/// [`BacktestError::Model`] when the window cannot make a dataset or a model.
pub fn train_fold(
    series: &[SymbolSeries],
    fold: &Fold,
    cfg: &WalkForwardConfig,
    iv: i64,
) -> Result<TrainedFold, BacktestError> {
    let version = format!(
        "wf-{}-{}",
        fold.index,
        crate::dates::format_date(fold.test_start)
    );
    let m = &cfg.model;
    if m.kind.is_rule() {
        let artifact = match m.kind {
            ModelKind::Trend => ModelArtifact::trend(&qt_models::TrendConfig::default(), &version),
            _ => ModelArtifact::momentum(&m.momentum, &version),
        }
        .map_err(|e| BacktestError::Model(e.to_string()))?;
        return Ok(TrainedFold {
            artifact,
            train_rows: 0,
            purged_rows: 0,
            auc_buy: None,
            auc_sell: None,
            expected_value: None,
            exits: None,
        });
    }
    let train: Vec<Series> = series
        .iter()
        .map(|s| {
            let lo = s
                .candles
                .partition_point(|c| c.open_time < fold.train_start);
            let hi = s.candles.partition_point(|c| c.open_time < fold.train_end);
            Series {
                symbol: s.symbol.clone(),
                interval_ms: iv,
                candles: s.candles[lo..hi].to_vec(),
            }
        })
        .filter(|s| !s.candles.is_empty())
        .collect();
    let candles: usize = train.iter().map(|s| s.candles.len()).sum();
    let fold_err =
        |e: qt_models::ModelError| BacktestError::Model(format!("fold {}: {e}", fold.index));
    let prepared = Dataset::prepare_with_context(&train, 1, &cfg.backtest.context_inputs())
        .map_err(fold_err)?;
    let tc = cfg.train_config(version);
    let chosen = train_choosing_exits_lean(&prepared, &tc).map_err(fold_err)?;
    let (artifact, report, ds) = (chosen.artifact, chosen.report, chosen.dataset);
    let purged = candles.saturating_sub(ds.len());
    Ok(TrainedFold {
        artifact,
        train_rows: ds.len(),
        purged_rows: purged,
        auc_buy: report.test.auc_buy,
        auc_sell: report.test.auc_sell,
        expected_value: report.ev,
        exits: report.exits,
    })
}
