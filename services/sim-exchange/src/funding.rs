//! Funding rates of the served symbols: Binance funding-rate history files (read by
//! `qt-candles`, the same reader and schedule as the backtester's) where they cover the time,
//! else a default rate every `interval_hours` from 00:00 UTC. The engine charges by them at
//! each funding time of the replay clock (market time, the candles' own).

use std::collections::BTreeMap;

use qt_candles::FundingSchedule;
use qt_events::Decimal;

use crate::config::FundingSettings;

/// Rates by symbol and the default schedule. Does not change at run time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FundingRates {
    pub default_rate: Decimal,
    pub interval_hours: u32,
    /// (funding time ms, rate) by symbol, in time order.
    pub history: BTreeMap<String, Vec<(i64, Decimal)>>,
}

impl FundingRates {
    /// The default schedule only (no history).
    pub fn flat(default_rate: Decimal, interval_hours: u32) -> Self {
        Self {
            default_rate,
            interval_hours,
            history: BTreeMap::new(),
        }
    }

    /// Reads the history files of `settings.dir`, if any.
    ///
    /// # Errors
    /// A file that cannot be read or parsed (named, with its line).
    pub fn load(settings: &FundingSettings) -> Result<Self, qt_candles::CandleError> {
        let mut rates = Self::flat(settings.default_rate, settings.interval_hours);
        if let Some(dir) = &settings.dir {
            rates.history = qt_candles::read_funding_dir(dir)?;
            tracing::info!(dir = %dir.display(), symbols = rates.history.len(),
                "funding rates from history files (default rate elsewhere)");
        }
        Ok(rates)
    }

    /// The schedule of `symbol`.
    pub fn schedule(&self, symbol: &str) -> FundingSchedule<'_> {
        FundingSchedule::new(
            self.history.get(symbol).map_or(&[][..], Vec::as_slice),
            self.default_rate,
            self.interval_hours,
        )
    }
}
