//! The features of a whole universe of symbols: each symbol's own [`FeatureEngine`] plus the
//! [`MarketFactor`] every symbol reads. [`UniverseFeatures`] is the live path (trading-bot, the
//! backtester's per-candle path), [`batch_universe`] the training path; both run the same code,
//! so their values are identical (test in `tests/engine_paths.rs`).

use std::collections::BTreeMap;

use qt_candles::Candle;

use crate::context::{ContextInputs, FundingSeries};
use crate::engine::{CHANGE_24H, RET_48};
use crate::market::MarketFactor;
use crate::{
    CONTEXT_OFFSET, FeatureConfig, FeatureEngine, FeatureVector, MARKET_OFFSET, N_FEATURES,
};

/// Fills the market-factor part of a symbol's vector from the market state.
fn fill_market(market: &MarketFactor, v: &mut FeatureVector) {
    let values = market.values(v.open_time, v.values[RET_48], v.values[CHANGE_24H]);
    v.values[MARKET_OFFSET..CONTEXT_OFFSET].copy_from_slice(&values);
}

/// Fills the funding inputs of a symbol's vector: those known at the candle's close (the
/// candle is decided on then). Without a series they stay 0, `funding_known` 0.
fn fill_context(funding: Option<&FundingSeries>, interval_ms: i64, v: &mut FeatureVector) {
    if let Some(f) = funding {
        let values = f.values(v.open_time + interval_ms);
        v.values[CONTEXT_OFFSET..N_FEATURES].copy_from_slice(&values);
    }
}

/// Every symbol's feature engine and the market factor, fed closed candles as they come.
#[derive(Debug, Clone)]
pub struct UniverseFeatures {
    config: FeatureConfig,
    engines: BTreeMap<String, FeatureEngine>,
    market: MarketFactor,
    context: ContextInputs,
}

impl UniverseFeatures {
    pub fn new(config: FeatureConfig) -> Self {
        UniverseFeatures {
            config,
            engines: BTreeMap::new(),
            market: MarketFactor::new(config),
            context: ContextInputs::default(),
        }
    }

    /// With the symbols' funding histories (a backtest loads them whole: each candle reads
    /// only what was published by its close).
    pub fn with_context(mut self, context: ContextInputs) -> Self {
        self.context = context;
        self
    }

    /// A funding rate as it is published live (see [`FundingSeries::observe`]).
    pub fn observe_funding(
        &mut self,
        symbol: &str,
        published_at: i64,
        funding_time: i64,
        rate: f64,
    ) {
        self.context
            .observe_funding(symbol, published_at, funding_time, rate);
    }

    /// A funding rate fetched from the exchange's history (see [`FundingSeries::fetched`]): it
    /// is read from the first candle closing at or after its publication time.
    pub fn fetched_funding(&mut self, symbol: &str, funding_time: i64, rate: f64) {
        self.context.fetched_funding(symbol, funding_time, rate);
    }

    /// Forgets a symbol's funding rates.
    pub fn forget_funding(&mut self, symbol: &str) {
        self.context.forget(symbol);
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// One symbol's engine, if it has taken a candle.
    pub fn engine(&self, symbol: &str) -> Option<&FeatureEngine> {
        self.engines.get(symbol)
    }

    /// Forgets a symbol's features (a symbol added again warms up afresh). The market factor
    /// keeps what it knows: a reference that stops coming goes stale, then missing.
    pub fn remove(&mut self, symbol: &str) {
        self.engines.remove(symbol);
    }

    /// Takes a symbol's next closed candle; returns its features once that symbol is warmed
    /// up, `None` before and for a candle not after the symbol's previous one.
    pub fn update(&mut self, symbol: &str, candle: &Candle) -> Option<FeatureVector> {
        self.market.update(symbol, candle);
        let config = self.config;
        let engine = self
            .engines
            .entry(symbol.to_owned())
            .or_insert_with(|| FeatureEngine::new(config));
        // Fetched funding rates published by this candle's close become readable.
        self.context
            .release(symbol, candle.open_time.saturating_add(config.interval_ms));
        let mut v = engine.update(candle)?;
        fill_market(&self.market, &mut v);
        fill_context(self.context.funding(symbol), config.interval_ms, &mut v);
        Some(v)
    }
}

/// The market state of the training path: every value of the reference series among
/// `series` (the others are ignored), for [`batch_with_market`].
pub fn market_history(config: FeatureConfig, series: &[(&str, &[Candle])]) -> MarketFactor {
    let mut market = MarketFactor::keeping(config, usize::MAX);
    for (symbol, candles) in series {
        if MarketFactor::is_reference(symbol) {
            for c in *candles {
                market.update(symbol, c);
            }
        }
    }
    market
}

/// The training path of one symbol: a fresh engine over its candles, the market factor read
/// from `market` ([`market_history`] of the whole universe). Equals what [`UniverseFeatures`]
/// gives live for the same candles.
pub fn batch_with_market(
    config: FeatureConfig,
    market: &MarketFactor,
    candles: &[Candle],
) -> Vec<Option<FeatureVector>> {
    batch_with_context(config, market, None, candles)
}

/// [`batch_with_market`] with the symbol's funding history (its inputs at each candle are those
/// published by the candle's close). Equals what [`UniverseFeatures::with_context`] gives.
pub fn batch_with_context(
    config: FeatureConfig,
    market: &MarketFactor,
    funding: Option<&FundingSeries>,
    candles: &[Candle],
) -> Vec<Option<FeatureVector>> {
    let mut engine = FeatureEngine::new(config);
    candles
        .iter()
        .map(|c| {
            let mut v = engine.update(c)?;
            fill_market(market, &mut v);
            fill_context(funding, config.interval_ms, &mut v);
            Some(v)
        })
        .collect()
}

/// The training path over a universe: the features of every candle of every series (in the
/// order given, `None` during each symbol's warm-up), with the market factor read from the
/// series of [`crate::market::MARKET_REFERENCES`] when they are among them.
pub fn batch_universe(
    config: FeatureConfig,
    series: &[(&str, &[Candle])],
) -> Vec<Vec<Option<FeatureVector>>> {
    let market = market_history(config, series);
    series
        .iter()
        .map(|(_, candles)| batch_with_market(config, &market, candles))
        .collect()
}
