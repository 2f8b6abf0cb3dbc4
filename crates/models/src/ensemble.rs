use std::collections::VecDeque;

use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::FeatureVector;
use serde::{Deserialize, Serialize};

use crate::{Model, ModelError, Signal};

/// Settings of the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Rolling window, in decisions, for the HOLD share and the signal mix (default 288 = one
    /// day of 5m candles).
    pub window: usize,
    /// A member whose HOLD share over a full window is above this hands over to the next
    /// (default 0.8).
    pub hold_limit: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            window: 288,
            hold_limit: 0.8,
        }
    }
}

/// Share of each action over a window of decisions.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SignalMix {
    pub buy: f64,
    pub sell: f64,
    pub hold: f64,
    /// Decisions counted.
    pub count: usize,
}

impl SignalMix {
    /// The mix of a list of actions.
    pub fn of(actions: impl IntoIterator<Item = SignalAction>) -> Self {
        let (mut b, mut s, mut h) = (0usize, 0usize, 0usize);
        for a in actions {
            match a {
                SignalAction::Buy => b += 1,
                SignalAction::Sell => s += 1,
                SignalAction::Hold => h += 1,
            }
        }
        let n = b + s + h;
        let f = |x: usize| if n == 0 { 0.0 } else { x as f64 / n as f64 };
        SignalMix {
            buy: f(b),
            sell: f(s),
            hold: f(h),
            count: n,
        }
    }

    /// Inside the target range: 30–40% BUY, 30–40% SELL, 20–40% HOLD.
    pub fn in_target(&self) -> bool {
        (0.30..=0.40).contains(&self.buy)
            && (0.30..=0.40).contains(&self.sell)
            && (0.20..=0.40).contains(&self.hold)
    }
}

#[derive(Debug)]
struct Member {
    model: Box<dyn Model>,
    holds: VecDeque<bool>,
    hold_count: usize,
}

/// Members in priority order. Every member sees every candle (so stateful members stay
/// current); the answer is the first member that has not said HOLD for more than `hold_limit`
/// of a full window; when all have, the last member answers.
#[derive(Debug)]
pub struct EnsembleModel {
    config: EnsembleConfig,
    version: String,
    members: Vec<Member>,
    recent: VecDeque<SignalAction>,
    active: usize,
}

impl EnsembleModel {
    pub fn new(
        config: EnsembleConfig,
        members: Vec<Box<dyn Model>>,
        version: impl Into<String>,
    ) -> Result<Self, ModelError> {
        if members.is_empty() || config.window == 0 || !(0.0..=1.0).contains(&config.hold_limit) {
            return Err(ModelError::Params(
                "an ensemble needs members, a window > 0 and a hold limit in 0..=1".to_string(),
            ));
        }
        Ok(EnsembleModel {
            config,
            version: version.into(),
            members: members
                .into_iter()
                .map(|model| Member {
                    model,
                    holds: VecDeque::with_capacity(config.window),
                    hold_count: 0,
                })
                .collect(),
            recent: VecDeque::with_capacity(config.window),
            active: 0,
        })
    }

    /// The mix of the ensemble's own decisions over the window, so drift is visible.
    pub fn signal_mix(&self) -> SignalMix {
        SignalMix::of(self.recent.iter().copied())
    }

    /// The mix of each member's decisions over the window (by member name).
    pub fn member_hold_shares(&self) -> Vec<(String, f64)> {
        self.members
            .iter()
            .map(|m| {
                let share = if m.holds.is_empty() {
                    0.0
                } else {
                    m.hold_count as f64 / m.holds.len() as f64
                };
                (m.model.name().to_string(), share)
            })
            .collect()
    }

    /// Name of the member that gave the last answer.
    pub fn active_member(&self) -> &str {
        self.members[self.active].model.name()
    }

    fn stuck(&self, m: &Member) -> bool {
        m.holds.len() == self.config.window
            && m.hold_count as f64 > self.config.hold_limit * self.config.window as f64
    }
}

impl Model for EnsembleModel {
    fn name(&self) -> &str {
        "ensemble"
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        let window = self.config.window;
        let mut signals = Vec::with_capacity(self.members.len());
        for m in &mut self.members {
            let s = m.model.predict_for(symbol, features, candle);
            let hold = s.action == SignalAction::Hold;
            if m.holds.len() == window && m.holds.pop_front() == Some(true) {
                m.hold_count -= 1;
            }
            m.holds.push_back(hold);
            m.hold_count += usize::from(hold);
            signals.push(s);
        }
        let last = self.members.len() - 1;
        self.active = (0..last)
            .find(|&i| !self.stuck(&self.members[i]))
            .unwrap_or(last);
        let s = signals[self.active];
        if self.recent.len() == window {
            self.recent.pop_front();
        }
        self.recent.push_back(s.action);
        s
    }
    fn signal_mix(&self) -> Option<SignalMix> {
        Some(EnsembleModel::signal_mix(self))
    }
    fn memory(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.model.memory())
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member that replays a fixed script of actions.
    #[derive(Debug)]
    struct Scripted {
        name: &'static str,
        script: Vec<SignalAction>,
        at: usize,
    }

    impl Model for Scripted {
        fn name(&self) -> &str {
            self.name
        }
        fn version(&self) -> &str {
            "test"
        }
        fn predict(&mut self, _: &FeatureVector, _: &Candle) -> Signal {
            let a = self.script[self.at % self.script.len()];
            self.at += 1;
            Signal::new(a, 0.7)
        }
    }

    fn fv() -> FeatureVector {
        FeatureVector {
            open_time: 0,
            values: [0.0; qt_features::N_FEATURES],
        }
    }

    #[test]
    fn a_member_holding_over_80_percent_of_the_window_hands_over_to_the_next() {
        use SignalAction::*;
        // Primary: 9 HOLD then 1 BUY, repeating (90% HOLD). Fallback: always SELL.
        let primary = Scripted {
            name: "primary",
            script: [vec![Hold; 9], vec![Buy]].concat(),
            at: 0,
        };
        let fallback = Scripted {
            name: "fallback",
            script: vec![Sell],
            at: 0,
        };
        let cfg = EnsembleConfig {
            window: 10,
            hold_limit: 0.8,
        };
        let mut e = EnsembleModel::new(cfg, vec![Box::new(primary), Box::new(fallback)], "e1")
            .expect("valid ensemble");
        let c = Candle::default();
        // Window not full yet: the primary answers.
        for _ in 0..9 {
            assert_eq!(e.predict(&fv(), &c).action, Hold);
            assert_eq!(e.active_member(), "primary");
        }
        // Tenth decision: the window is full with 9/10 HOLD → fallback.
        assert_eq!(e.predict(&fv(), &c).action, Sell);
        assert_eq!(e.active_member(), "fallback");
        let mix = e.signal_mix();
        assert_eq!(mix.count, 10);
        let as_trait: &dyn Model = &e;
        assert_eq!(as_trait.signal_mix(), Some(mix));
        assert!((mix.hold - 0.9).abs() < 1e-12 && (mix.sell - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_member_at_exactly_80_percent_hold_keeps_answering() {
        use SignalAction::*;
        let primary = Scripted {
            name: "primary",
            script: [vec![Hold; 8], vec![Buy, Sell]].concat(),
            at: 0,
        };
        let fallback = Scripted {
            name: "fallback",
            script: vec![Sell],
            at: 0,
        };
        let cfg = EnsembleConfig {
            window: 10,
            hold_limit: 0.8,
        };
        let mut e = EnsembleModel::new(cfg, vec![Box::new(primary), Box::new(fallback)], "e")
            .expect("valid ensemble");
        for _ in 0..50 {
            e.predict(&fv(), &Candle::default());
            assert_eq!(e.active_member(), "primary");
        }
    }

    #[test]
    fn signal_mix_reports_the_target_range() {
        use SignalAction::*;
        let in_range = SignalMix::of([Buy, Buy, Buy, Sell, Sell, Sell, Hold, Hold, Hold, Buy]);
        assert!(in_range.in_target(), "{in_range:?}");
        let drifted = SignalMix::of([Hold, Hold, Hold, Hold, Buy]);
        assert!(!drifted.in_target());
    }
}
