//! `qt-features` turns closed candles into the model features of Quantum Trader.
//!
//! [`FeatureEngine`] takes one symbol's closed candles in order and does O(1) work per candle
//! (moving averages, EMA, Wilder RSI, MACD, ATR, Bollinger, OBV from `kand` with TA-Lib
//! definitions; volume-price trend, candlestick patterns, support/resistance distances, returns,
//! realized volatility and 24h momentum), higher-timeframe context aggregated from the candles
//! ([`htf`]: hourly RSI, EMA and ATR, 4-hour returns) and the market factor ([`market`]: BTC's
//! and ETH's returns and volatility for every symbol, read by [`UniverseFeatures`] and
//! [`batch_universe`], which see the whole universe) and, when the caller has it, the symbol's
//! funding rate aligned by its publication time ([`context`]). The training path [`batch`] runs the same engine over
//! a slice, so live trading, backtests and training see identical numbers, and a feature at a
//! candle only ever reads that candle and earlier ones (tests prove both).
//!
//! It must never know about Redis, HTTP, SQL, an async runtime, the wall clock or a model: it
//! maps candles to numbers and nothing else. The `cli` module is the `qtctl features` command.

pub mod cli;
pub mod context;
mod engine;
pub mod htf;
pub mod indicators;
pub mod market;
mod universe;

pub use context::{ContextInputs, FundingSeries};
pub use engine::{
    CONTEXT_OFFSET, FEATURE_NAMES, FeatureConfig, FeatureEngine, FeatureVector, HTF_OFFSET,
    MARKET_OFFSET, N_FEATURES, batch, feature_index,
};
pub use market::MarketFactor;
pub use universe::{
    UniverseFeatures, batch_universe, batch_with_context, batch_with_market, market_history,
};
