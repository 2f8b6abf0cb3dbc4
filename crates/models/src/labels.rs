//! Triple-barrier labels: for each candle, would a long (or a short) entered at its close with
//! our exit plan have reached its take-profit before its stop, within the horizon?

use qt_candles::Candle;
use qt_events::SignalAction;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The barriers, matching the exit plan defaults: first take-profit leg +1.95%, stop −2%,
/// 24 candles (2 h at 5m).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarrierConfig {
    /// Take-profit distance from the entry, as a fraction (0.0195 = +1.95%).
    pub take_profit: f64,
    /// Stop distance from the entry, as a fraction (0.02 = −2%).
    pub stop_loss: f64,
    /// Time barrier, in candles after the entry candle.
    pub horizon: usize,
}

impl Default for BarrierConfig {
    fn default() -> Self {
        BarrierConfig {
            take_profit: 0.0195,
            stop_loss: 0.02,
            horizon: 24,
        }
    }
}

impl BarrierConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        let valid = self.take_profit > 0.0
            && self.stop_loss > 0.0
            && self.horizon > 0
            && self.take_profit.is_finite()
            && self.stop_loss.is_finite();
        if !valid {
            return Err(ModelError::Params(format!("invalid barriers {self:?}")));
        }
        Ok(())
    }
}

/// Where one side's trade ends: at candle offset `k` (1-based) with a win, or a loss, or never.
fn first_exit(
    entry: f64,
    highs: &[f64],
    lows: &[f64],
    cfg: &BarrierConfig,
    long: bool,
) -> Option<(usize, bool)> {
    let (tp, sl) = if long {
        (
            entry * (1.0 + cfg.take_profit),
            entry * (1.0 - cfg.stop_loss),
        )
    } else {
        (
            entry * (1.0 - cfg.take_profit),
            entry * (1.0 + cfg.stop_loss),
        )
    };
    for (k, (&h, &l)) in highs.iter().zip(lows).enumerate() {
        let (stopped, target) = if long {
            (l <= sl, h >= tp)
        } else {
            (h >= sl, l <= tp)
        };
        // Both barriers inside one candle: the order is unknown, the stop counts first.
        if stopped {
            return Some((k + 1, false));
        }
        if target {
            return Some((k + 1, true));
        }
    }
    None
}

/// How one side's trade entered at a candle's close ends under the barriers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The take-profit was reached first, `after` candles after the entry candle.
    Win { after: usize },
    /// The stop was reached first (or together with the target), `after` candles later.
    Loss { after: usize },
    /// Neither within the horizon: closed at the horizon candle's close with this return (a
    /// fraction, in the side's favour: positive is a gain).
    Timeout { ret: f64 },
}

impl Outcome {
    /// The trade's gross return, a fraction in the side's favour: `+take_profit` for a win,
    /// `-stop_loss` for a loss, the close-to-close return at the horizon for a timeout.
    pub fn gross_return(&self, cfg: &BarrierConfig) -> f64 {
        match *self {
            Outcome::Win { .. } => cfg.take_profit,
            Outcome::Loss { .. } => -cfg.stop_loss,
            Outcome::Timeout { ret } => ret,
        }
    }

    /// Candles the trade is held (the horizon for a timeout).
    pub fn held(&self, cfg: &BarrierConfig) -> usize {
        match *self {
            Outcome::Win { after } | Outcome::Loss { after } => after,
            Outcome::Timeout { .. } => cfg.horizon,
        }
    }
}

/// Both sides' outcomes of an entry at one candle's close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcomes {
    pub long: Outcome,
    pub short: Outcome,
}

impl Outcomes {
    /// The three-way label: BUY if the long wins, SELL if the short wins (if both would win,
    /// the earlier win counts; a tie is HOLD), HOLD otherwise.
    pub fn label(&self) -> SignalAction {
        match (self.long, self.short) {
            (Outcome::Win { after: a }, Outcome::Win { after: b }) if a < b => SignalAction::Buy,
            (Outcome::Win { after: a }, Outcome::Win { after: b }) if b < a => SignalAction::Sell,
            (Outcome::Win { .. }, Outcome::Win { .. }) => SignalAction::Hold,
            (Outcome::Win { .. }, _) => SignalAction::Buy,
            (_, Outcome::Win { .. }) => SignalAction::Sell,
            _ => SignalAction::Hold,
        }
    }
}

/// Both sides' outcomes for every candle, `None` for the last `horizon` candles, whose future
/// is not in the data.
pub fn barrier_outcomes(candles: &[Candle], cfg: &BarrierConfig) -> Vec<Option<Outcomes>> {
    let n = candles.len();
    let highs: Vec<f64> = candles.iter().map(Candle::high_f64).collect();
    let lows: Vec<f64> = candles.iter().map(Candle::low_f64).collect();
    (0..n)
        .map(|i| {
            if i + cfg.horizon >= n {
                return None;
            }
            let entry = candles[i].close_f64();
            let future = i + 1..=i + cfg.horizon;
            let (h, l) = (&highs[future.clone()], &lows[future]);
            let change = candles[i + cfg.horizon].close_f64() / entry - 1.0;
            let side = |long: bool| match first_exit(entry, h, l, cfg, long) {
                Some((after, true)) => Outcome::Win { after },
                Some((after, false)) => Outcome::Loss { after },
                None => Outcome::Timeout {
                    ret: if long { change } else { -change },
                },
            };
            Some(Outcomes {
                long: side(true),
                short: side(false),
            })
        })
        .collect()
}

/// The label of every candle: `Some(Buy)` if a long entered at its close hits the take-profit
/// before the stop within the horizon, `Some(Sell)` if a short would, `Some(Hold)` otherwise
/// (see [`Outcomes::label`]), and `None` for the last `horizon` candles, whose future is not in
/// the data.
pub fn triple_barrier(candles: &[Candle], cfg: &BarrierConfig) -> Vec<Option<SignalAction>> {
    barrier_outcomes(candles, cfg)
        .into_iter()
        .map(|o| o.map(|o| o.label()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_events::Decimal;

    fn bar(t: i64, high: f64, low: f64, close: f64) -> Candle {
        let d = |x: f64| Decimal::from_f64_retain(x).unwrap_or_default();
        Candle::new(t, d(close), d(high), d(low), d(close), Decimal::ONE)
    }

    fn cfg(h: usize) -> BarrierConfig {
        BarrierConfig {
            take_profit: 0.02,
            stop_loss: 0.02,
            horizon: h,
        }
    }

    #[test]
    fn long_that_reaches_take_profit_first_is_buy() {
        let c = [
            bar(0, 100.0, 100.0, 100.0),
            bar(1, 101.0, 99.0, 100.5),
            bar(2, 102.5, 100.0, 102.0),
        ];
        assert_eq!(triple_barrier(&c, &cfg(2))[0], Some(SignalAction::Buy));
    }

    #[test]
    fn short_that_reaches_take_profit_first_is_sell() {
        let c = [
            bar(0, 100.0, 100.0, 100.0),
            bar(1, 100.5, 97.5, 98.0),
            bar(2, 103.0, 97.0, 102.0),
        ];
        assert_eq!(triple_barrier(&c, &cfg(2))[0], Some(SignalAction::Sell));
    }

    #[test]
    fn both_barriers_in_one_candle_count_as_the_stop() {
        // One wide candle touches +2% and −2%: the long is stopped and the short is stopped.
        let c = [bar(0, 100.0, 100.0, 100.0), bar(1, 103.0, 97.0, 100.0)];
        assert_eq!(triple_barrier(&c, &cfg(1))[0], Some(SignalAction::Hold));
    }

    #[test]
    fn nothing_reached_within_the_horizon_is_hold_and_the_tail_has_no_label() {
        let c = [
            bar(0, 100.0, 100.0, 100.0),
            bar(1, 101.0, 99.0, 100.0),
            bar(2, 101.5, 99.5, 100.0),
            bar(3, 110.0, 100.0, 110.0),
        ];
        let l = triple_barrier(&c, &cfg(2));
        assert_eq!(l[0], Some(SignalAction::Hold));
        assert_eq!(l[1], Some(SignalAction::Buy));
        assert_eq!(l[2], None);
        assert_eq!(l[3], None);
    }

    #[test]
    fn a_stop_before_the_target_makes_the_long_lose() {
        let c = [
            bar(0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 97.9, 98.5),
            bar(2, 103.0, 98.5, 103.0),
        ];
        // Long stopped at candle 1; short: target 98 reached at candle 1 (low 97.9) → SELL.
        assert_eq!(triple_barrier(&c, &cfg(2))[0], Some(SignalAction::Sell));
    }

    #[test]
    fn outcomes_carry_when_each_side_ends_and_what_a_timeout_returns() {
        let c = [
            bar(0, 100.0, 100.0, 100.0),
            bar(1, 101.0, 97.9, 98.5),
            bar(2, 101.0, 98.5, 99.0),
        ];
        let o = barrier_outcomes(&c, &cfg(2))[0].expect("labelled");
        assert_eq!(o.long, Outcome::Loss { after: 1 });
        assert_eq!(o.short, Outcome::Win { after: 1 });
        assert_eq!(o.long.gross_return(&cfg(2)), -0.02);
        // Neither barrier within one candle: a timeout at that candle's close, +1% for the
        // long, −1% for the short.
        let c = [bar(0, 100.0, 100.0, 100.0), bar(1, 101.5, 99.0, 101.0)];
        let o = barrier_outcomes(&c, &cfg(1))[0].expect("labelled");
        let Outcome::Timeout { ret } = o.long else {
            panic!("{o:?}")
        };
        assert!((ret - 0.01).abs() < 1e-12);
        let Outcome::Timeout { ret } = o.short else {
            panic!("{o:?}")
        };
        assert!((ret + 0.01).abs() < 1e-12);
        assert_eq!(o.long.held(&cfg(1)), 1);
    }
}
