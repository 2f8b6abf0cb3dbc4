//! Time-series momentum on hourly closes, normalized by volatility (model kind `trend`).
//!
//! Moskowitz, Ooi & Pedersen (2012, "Time series momentum"): an asset's own past return
//! predicts its next return; in crypto the effect is documented at horizons of one to four weeks
//! (Liu & Tsyvinski 2021). The rule here, pre-registered in `docs/perf/models.md` with fixed
//! settings: on each candle that closes a UTC hour, the last `lookback_hours` hourly log returns
//! give the strength `s = Σ r / (σ_r · √n)` — the window's log return in units of its own
//! hourly volatility (a t-statistic of the mean hourly return). BUY when `s ≥ threshold`, SELL
//! when `s ≤ −threshold`, HOLD otherwise and on every candle that does not close an hour.
//!
//! The rule reads candle closes only (no features): each symbol's hourly closes are kept by the
//! model itself, keyed by the symbol [`Model::predict_for`] passes, so one instance serves many
//! symbols. A candle closes an hour when its open time plus the candle interval is a multiple
//! of an hour; the interval is the smallest step between open times seen so far for the
//! symbol, so the rule works unchanged on 1m, 5m, 15m or 1h candles (it needs two candles to
//! know the step). Nothing after the decided candle is read.

use std::collections::{HashMap, VecDeque};

use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::FeatureVector;
use serde::{Deserialize, Serialize};

use crate::{Model, ModelError, Signal};

const HOUR_MS: i64 = 3_600_000;

/// The rule's fixed settings (defaults are the pre-registered ones).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendConfig {
    /// Hourly returns in the window. Default 168 (one week).
    pub lookback_hours: usize,
    /// Strength (in hourly standard errors) at which the rule goes long (≥) or short (≤ −).
    /// Default 1.
    pub threshold: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        TrendConfig {
            lookback_hours: 168,
            threshold: 1.0,
        }
    }
}

impl TrendConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.lookback_hours < 2 || !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(ModelError::Params(format!(
                "trend needs lookback_hours ≥ 2 and a positive threshold, got {} and {}",
                self.lookback_hours, self.threshold
            )));
        }
        Ok(())
    }

    /// Candles of 5 minutes (or longer) a rule needs to see before it can decide: the window's
    /// hours plus one close and one hour of slack. What [`Model::memory`] answers, so a caller
    /// that swaps the model in replays enough history (at 1m candles a swapped-in rule still
    /// needs the missing hours).
    pub fn memory_candles(&self) -> usize {
        (self.lookback_hours + 2) * 12
    }
}

/// The decision on a window of hourly closes (oldest first, `lookback_hours + 1` of them):
/// the strength `s` and the signal. `None` when the window is short or has no volatility.
pub fn strength(closes: &[f64]) -> Option<f64> {
    if closes.len() < 3 || closes.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
        return None;
    }
    let n = (closes.len() - 1) as f64;
    let returns = closes.windows(2).map(|w| (w[1] / w[0]).ln());
    let sum: f64 = returns.clone().sum();
    let mean = sum / n;
    let var = returns.map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    let s = sum / (sd * n.sqrt());
    (sd > 0.0 && s.is_finite()).then_some(s)
}

/// One symbol's hourly closes and candle step.
#[derive(Debug, Clone, Default)]
struct SymbolState {
    last_open: Option<i64>,
    step: Option<i64>,
    closes: VecDeque<f64>,
}

impl SymbolState {
    /// Takes a candle; returns whether it closed an hour (and its close was recorded).
    fn push(&mut self, candle: &Candle, keep: usize) -> bool {
        let t = candle.open_time;
        if let Some(last) = self.last_open {
            if t <= last {
                return false;
            }
            let d = t - last;
            self.step = Some(self.step.map_or(d, |s| s.min(d)));
        }
        self.last_open = Some(t);
        let Some(step) = self.step.filter(|s| *s <= HOUR_MS) else {
            return false;
        };
        if (t + step).rem_euclid(HOUR_MS) != 0 {
            return false;
        }
        if self.closes.len() == keep {
            self.closes.pop_front();
        }
        self.closes.push_back(candle.close_f64());
        true
    }
}

/// The trend rule with each symbol's state.
#[derive(Debug, Clone)]
pub struct TrendModel {
    config: TrendConfig,
    version: String,
    symbols: HashMap<String, SymbolState>,
    window: Vec<f64>,
}

impl TrendModel {
    pub fn new(config: TrendConfig, version: impl Into<String>) -> Result<Self, ModelError> {
        config.validate()?;
        Ok(TrendModel {
            config,
            version: version.into(),
            symbols: HashMap::new(),
            window: Vec::with_capacity(config.lookback_hours + 1),
        })
    }

    pub fn config(&self) -> &TrendConfig {
        &self.config
    }

    /// The signal for a strength.
    pub fn decide(&self, s: f64) -> Signal {
        let z = self.config.threshold;
        let confidence = 0.5 * (s.abs() / z).min(2.0);
        if s >= z {
            Signal::new(SignalAction::Buy, confidence)
        } else if s <= -z {
            Signal::new(SignalAction::Sell, confidence)
        } else {
            Signal::hold(1.0 - s.abs() / z)
        }
    }

    /// The rule on one closed candle of `symbol`: the signal, and the strength when the candle
    /// closed an hour with a full window (the primary side of the meta-labeler).
    pub fn step(&mut self, symbol: &str, candle: &Candle) -> (Signal, Option<f64>) {
        let keep = self.config.lookback_hours + 1;
        let state = match self.symbols.get_mut(symbol) {
            Some(s) => s,
            None => self.symbols.entry(symbol.to_owned()).or_default(),
        };
        if !state.push(candle, keep) || state.closes.len() < keep {
            return (Signal::hold(1.0), None);
        }
        self.window.clear();
        self.window.extend(state.closes.iter().copied());
        match strength(&self.window) {
            Some(s) => (self.decide(s), Some(s)),
            None => (Signal::hold(1.0), None),
        }
    }
}

impl Model for TrendModel {
    fn name(&self) -> &str {
        "trend"
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, _features: &FeatureVector, candle: &Candle) -> Signal {
        self.step(symbol, candle).0
    }
    fn memory(&self) -> usize {
        self.config.memory_candles()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_features::N_FEATURES;
    use rust_decimal::Decimal;
    use rust_decimal::prelude::FromPrimitive;

    const M5: i64 = 300_000;

    pub(crate) fn candle(open_time: i64, close: f64) -> Candle {
        let p = Decimal::from_f64(close).expect("finite");
        Candle {
            open_time,
            open: p,
            high: p,
            low: p,
            close: p,
            volume: Decimal::ONE,
            quote_volume: p,
            trades: 1,
        }
    }

    fn fv(t: i64) -> FeatureVector {
        FeatureVector {
            open_time: t,
            values: [0.0; N_FEATURES],
        }
    }

    /// 5m closes following `price(hour_fraction)`, with a small alternating wiggle so the
    /// hourly returns have a spread.
    fn series(hours: usize, price: impl Fn(f64) -> f64) -> Vec<Candle> {
        (0..hours * 12)
            .map(|i| {
                let h = i as f64 / 12.0;
                let wiggle = if (i / 12) % 2 == 0 { 1.002 } else { 0.998 };
                candle(i as i64 * M5, price(h) * wiggle)
            })
            .collect()
    }

    fn run(model: &mut TrendModel, sym: &str, candles: &[Candle]) -> Vec<Signal> {
        candles
            .iter()
            .map(|c| model.predict_for(sym, &fv(c.open_time), c))
            .collect()
    }

    #[test]
    fn strength_is_the_windows_return_in_hourly_standard_errors() {
        // Returns ln 1.02, ln 1.01, ln 1.03: mean m, sample sd s, strength = Σr / (s·√3).
        let closes: [f64; 4] = [100.0, 102.0, 103.02, 106.1106];
        let r: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let m = r.iter().sum::<f64>() / 3.0;
        let sd = (r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 2.0).sqrt();
        let want = r.iter().sum::<f64>() / (sd * 3f64.sqrt());
        let got = strength(&closes).expect("defined");
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!(got > 3.0, "a steady rise is a strong trend: {got}");
        assert_eq!(
            strength(&[100.0, 101.0, 102.01]),
            None,
            "no spread, no strength"
        );
        assert_eq!(strength(&[100.0, 101.0]), None, "too short");
    }

    #[test]
    fn trend_goes_long_on_a_planted_uptrend_and_short_on_a_downtrend() {
        let mut m = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let up = series(200, |h| 100.0 * (0.002 * h).exp());
        let signals = run(&mut m, "UP", &up);
        let last = signals.last().expect("signals");
        assert_eq!(last.action, SignalAction::Buy, "{last:?}");
        let down = series(200, |h| 100.0 * (-0.002 * h).exp());
        let signals = run(&mut m, "DOWN", &down);
        assert_eq!(signals.last().expect("signals").action, SignalAction::Sell);
    }

    #[test]
    fn trend_holds_under_the_threshold_and_off_the_hour() {
        let mut m = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        // A flat market with the wiggle: strength near 0.
        let flat = series(200, |_| 100.0);
        let signals = run(&mut m, "FLAT", &flat);
        assert!(signals.iter().all(|s| s.action == SignalAction::Hold));
        // A drift too small for one standard error over the week: the wiggle (0.4% hourly
        // swings) dominates a 0.0005%/hour drift.
        let mut m = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let weak = series(200, |h| 100.0 * (0.000005 * h).exp());
        assert!(
            run(&mut m, "WEAK", &weak)
                .iter()
                .all(|s| s.action == SignalAction::Hold)
        );
        // On the uptrend, only candles closing an hour carry a decision.
        let mut m = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let up = series(200, |h| 100.0 * (0.002 * h).exp());
        let signals = run(&mut m, "UP", &up);
        for (c, s) in up.iter().zip(&signals) {
            if (c.open_time + M5) % HOUR_MS != 0 {
                assert_eq!(
                    s.action,
                    SignalAction::Hold,
                    "off the hour at {}",
                    c.open_time
                );
            }
        }
        assert!(signals.iter().any(|s| s.action == SignalAction::Buy));
        // Before a full week of hourly closes, it holds.
        let first_buy = signals
            .iter()
            .position(|s| s.action == SignalAction::Buy)
            .expect("a buy");
        assert!(first_buy >= 168 * 12, "decided at candle {first_buy}");
    }

    #[test]
    fn trend_reads_no_candle_after_the_one_it_decides() {
        // Decisions on a prefix equal the decisions on the full series up to the prefix's end,
        // whatever comes after (here a crash that would flip the sign).
        let mut candles = series(230, |h| 100.0 * (0.001 * h).exp());
        let cut = 200 * 12;
        let mut whole = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let full = run(&mut whole, "X", &candles);
        for (i, c) in candles.iter_mut().enumerate().skip(cut) {
            *c = candle(c.open_time, 50.0 - i as f64 * 0.001);
        }
        let mut rewritten = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let after = run(&mut rewritten, "X", &candles);
        assert_eq!(full[..cut], after[..cut]);
        assert_ne!(
            full[cut..],
            after[cut..],
            "the rewrite changes later decisions"
        );
    }

    #[test]
    fn trend_keeps_each_symbol_apart_and_ignores_redelivered_candles() {
        let up = series(200, |h| 100.0 * (0.002 * h).exp());
        let down = series(200, |h| 100.0 * (-0.002 * h).exp());
        let mut both = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let mut last = (Signal::hold(1.0), Signal::hold(1.0));
        for (u, d) in up.iter().zip(&down) {
            last.0 = both.predict_for("UP", &fv(u.open_time), u);
            // A redelivered candle changes nothing.
            both.predict_for("UP", &fv(u.open_time), u);
            last.1 = both.predict_for("DOWN", &fv(d.open_time), d);
        }
        assert_eq!(last.0.action, SignalAction::Buy);
        assert_eq!(last.1.action, SignalAction::Sell);
    }

    #[test]
    fn trend_decides_every_hour_on_hourly_candles() {
        let mut m = TrendModel::new(TrendConfig::default(), "t").expect("valid");
        let hourly: Vec<Candle> = (0..200)
            .map(|i| {
                let wiggle = if i % 2 == 0 { 1.002 } else { 0.998 };
                candle(i * HOUR_MS, 100.0 * (0.002 * i as f64).exp() * wiggle)
            })
            .collect();
        let signals = run(&mut m, "H", &hourly);
        // 169 closes are known at the 170th candle (the first has no step yet).
        assert!(
            signals[..169]
                .iter()
                .all(|s| s.action == SignalAction::Hold)
        );
        assert!(signals[169..].iter().all(|s| s.action == SignalAction::Buy));
    }

    #[test]
    fn trend_settings_are_checked() {
        let bad = TrendConfig {
            lookback_hours: 1,
            threshold: 1.0,
        };
        assert!(TrendModel::new(bad, "t").is_err());
        let bad = TrendConfig {
            lookback_hours: 10,
            threshold: f64::NAN,
        };
        assert!(TrendModel::new(bad, "t").is_err());
    }
}
