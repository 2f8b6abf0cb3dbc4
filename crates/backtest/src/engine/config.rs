//! The run's configuration and the exchange filters inferred for a symbol without any.

use std::collections::BTreeMap;

use qt_exits::ExitConfig;
use qt_matching::FillModel;
use qt_risk::{RiskLimits, Sizing, SymbolFilters};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::funding::FundingConfig;

/// Everything a run needs besides candles and models. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BacktestConfig {
    /// Candle interval, ms. Default 5 minutes.
    pub interval_ms: i64,
    /// Trade only candles opening at or after this time (ms); earlier candles warm up the
    /// features. `None`: from the start of the data.
    pub start_ms: Option<i64>,
    /// Stop before candles opening at or after this time (ms). `None`: to the end of the data.
    pub end_ms: Option<i64>,
    /// Starting equity in the quote asset. Default 10,000.
    pub initial_equity: Decimal,
    /// Smallest model confidence that opens a position. Default 0.5. A model that prices its
    /// trades (an expected return on the signal) is judged by its own validated margin instead.
    pub min_confidence: f64,
    pub sizing: Sizing,
    pub limits: RiskLimits,
    pub exits: ExitConfig,
    pub fill: FillModel,
    /// Funding of open positions at each funding time (history files or a default rate).
    pub funding: FundingConfig,
    /// The models' funding inputs are read from `funding.history` (each candle sees the rates
    /// published by its close; see `qt_features::context`), as for a model trained with them
    /// (`qtctl train --funding`). Default false: those inputs are missing.
    pub funding_features: bool,
    /// Let symbol profiles learn from closed trades during the run (as exit-brain does live).
    /// Default true.
    pub learn_profiles: bool,
    /// Exchange filters by symbol; symbols not listed get filters inferred from their first
    /// price (see [`infer_filters`]).
    pub filters: BTreeMap<String, SymbolFilters>,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            interval_ms: 300_000,
            start_ms: None,
            end_ms: None,
            initial_equity: Decimal::from(10_000),
            min_confidence: 0.5,
            sizing: Sizing::default(),
            limits: RiskLimits::default(),
            exits: ExitConfig::default(),
            fill: FillModel::default(),
            funding: FundingConfig::default(),
            funding_features: false,
            learn_profiles: true,
            filters: BTreeMap::new(),
        }
    }
}

impl BacktestConfig {
    /// The models' funding inputs: the funding history when `funding_features` is on, else
    /// none (missing).
    pub fn context_inputs(&self) -> qt_features::ContextInputs {
        if self.funding_features {
            qt_models::dataset::funding_inputs(&self.funding.history)
        } else {
            qt_features::ContextInputs::default()
        }
    }

    /// The costs this configuration charges a round trip, as a model that prices its trades
    /// ([`qt_models::ev`]) counts them: the taker fee and slippage per side, and the default
    /// funding rate per 8 hours.
    pub fn trade_costs(&self) -> qt_models::TradeCosts {
        let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
        let per_8h = 8.0 / f64::from(self.funding.interval_hours.max(1));
        qt_models::TradeCosts {
            fee_rate: f(self.fill.taker_fee),
            slippage: f(self.fill.slippage),
            funding_rate_8h: f(self.funding.default_rate) * per_8h,
        }
    }

    /// The labels a model for this configuration is trained with: its exits and costs, each
    /// trade followed for up to `horizon` candles.
    pub fn labeling(&self, horizon: usize) -> qt_models::LabelConfig {
        qt_models::LabelConfig {
            exits: self.exits.clone(),
            horizon,
            costs: self.trade_costs(),
        }
    }
}

/// Plausible filters for a symbol whose `exchangeInfo` is not at hand: a step worth about $1–10
/// of notional, a tick about 1/100,000 of the price, a $5 minimum notional.
pub fn infer_filters(price: Decimal) -> SymbolFilters {
    let p = price.to_f64().unwrap_or(1.0).max(1e-9);
    let step_exp = (10.0 / p).log10().floor() as i32;
    let tick_exp = p.log10().floor() as i32 - 5;
    let pow10 = |e: i32| {
        if e >= 0 {
            Decimal::from(10i64.pow(e.min(18) as u32))
        } else {
            Decimal::new(1, (-e).min(28) as u32)
        }
    };
    let step = pow10(step_exp);
    SymbolFilters {
        tick_size: pow10(tick_exp),
        step_size: step,
        min_qty: step,
        max_qty: Decimal::ZERO,
        min_notional: Decimal::from(5),
        ..SymbolFilters::NONE
    }
}
