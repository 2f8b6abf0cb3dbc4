//! The series a run takes: candles by symbol, or candles with their features computed once.

use qt_candles::Candle;
use qt_features::{FeatureConfig, FeatureVector};
use qt_matching::Bar;

/// One symbol's candles, in open-time order.
#[derive(Debug, Clone)]
pub struct SymbolSeries {
    pub symbol: String,
    pub candles: Vec<Candle>,
}

/// One symbol's candles with their features computed once (the batch path of the live
/// engine, so bit-identical), for many runs over the same data: a walk-forward's strategy,
/// baselines and random paths share them instead of each recomputing every feature.
#[derive(Debug, Clone)]
pub struct PreparedSeries {
    pub symbol: String,
    pub candles: std::sync::Arc<[Candle]>,
    pub(super) features: std::sync::Arc<[Option<FeatureVector>]>,
    /// Whether each candle can be traded on (`Bar::is_valid`), checked once.
    pub(super) valid: std::sync::Arc<[bool]>,
}

impl PreparedSeries {
    /// Computes the features of a universe's series at `interval_ms`, each with the market
    /// factor read from the universe's reference series (as
    /// [`qt_features::UniverseFeatures`] gives them live).
    pub fn prepare_all(series: &[SymbolSeries], interval_ms: i64) -> Vec<Self> {
        Self::prepare_all_with(series, interval_ms, &qt_features::ContextInputs::default())
    }

    /// [`PreparedSeries::prepare_all`] with each symbol's funding inputs read from `context`.
    pub fn prepare_all_with(
        series: &[SymbolSeries],
        interval_ms: i64,
        context: &qt_features::ContextInputs,
    ) -> Vec<Self> {
        let fcfg = FeatureConfig { interval_ms };
        let refs: Vec<(&str, &[Candle])> = series
            .iter()
            .map(|s| (s.symbol.as_str(), s.candles.as_slice()))
            .collect();
        let market = qt_features::market_history(fcfg, &refs);
        series
            .iter()
            .map(|s| {
                let funding = context.funding(&s.symbol);
                Self::with_market(s.clone(), fcfg, &market, funding)
            })
            .collect()
    }

    fn with_market(
        series: SymbolSeries,
        fcfg: FeatureConfig,
        market: &qt_features::MarketFactor,
        funding: Option<&qt_features::FundingSeries>,
    ) -> Self {
        let features = qt_features::batch_with_context(fcfg, market, funding, &series.candles);
        let valid: Vec<bool> = series
            .candles
            .iter()
            .map(|c| Bar::from(c).is_valid())
            .collect();
        Self {
            symbol: series.symbol,
            candles: series.candles.into(),
            features: features.into(),
            valid: valid.into(),
        }
    }
}

/// Where a run takes each candle's features from.
pub(super) enum Features<'d> {
    /// Computed as the candles pass, as trading-bot does live (the run's
    /// [`UniverseFeatures`]).
    Live,
    /// Computed beforehand, indexed like the candles, with each candle's validity.
    Shared(&'d [Option<FeatureVector>], &'d [bool]),
}
