//! Monitoring of the champion: model age, live signal mix against the mix it had on its test
//! rows, live win rate against its out-of-sample backtest. Pure: figures in, alerts out.

use std::collections::BTreeMap;

use qt_events::{AlertRaised, Severity};
use qt_models::SignalMix;
use serde::{Deserialize, Serialize};

/// Ranges. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Alert when the champion was trained longer ago than this (hours; default 72).
    pub max_model_age_hours: f64,
    /// Alert when a class's live share differs from its training share by more than this
    /// (absolute; default 0.2).
    pub max_mix_drift: f64,
    /// Live signals needed before the mix is judged (default 200).
    pub min_signals: usize,
    /// Alert when the live win rate is below the backtest's by more than this (default 0.15).
    pub win_rate_tolerance: f64,
    /// Live trades needed before the win rate is judged (default 20).
    pub min_trades: u64,
    /// Seconds between two checks (default 300).
    pub every_seconds: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            max_model_age_hours: 72.0,
            max_mix_drift: 0.2,
            min_signals: 200,
            win_rate_tolerance: 0.15,
            min_trades: 20,
            every_seconds: 300,
        }
    }
}

/// What the monitor looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub version: String,
    /// When the champion's training data ends (ms), to measure its age.
    pub trained_until_ms: i64,
    pub now_ms: i64,
    pub training_mix: SignalMix,
    pub live_mix: SignalMix,
    pub backtest_win_rate: f64,
    /// (wins, trades) of live trades on the champion's signals.
    pub live: (u64, u64),
}

fn alert(
    rule: &str,
    version: &str,
    sev: Severity,
    msg: String,
    d: &[(&str, String)],
) -> AlertRaised {
    AlertRaised {
        rule: rule.into(),
        key: version.into(),
        severity: sev,
        message: msg,
        service: "clm".into(),
        details: d
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The alerts `o` deserves.
pub fn assess(cfg: &MonitorConfig, o: &Observation) -> Vec<AlertRaised> {
    let mut out = Vec::new();
    let age_h = (o.now_ms - o.trained_until_ms) as f64 / 3_600_000.0;
    if age_h > cfg.max_model_age_hours {
        out.push(alert(
            "model_stale",
            &o.version,
            Severity::Warning,
            format!(
                "model {} was trained on data ending {age_h:.1} h ago (limit {:.1} h)",
                o.version, cfg.max_model_age_hours
            ),
            &[("age_hours", format!("{age_h:.1}"))],
        ));
    }
    if o.live_mix.count >= cfg.min_signals && o.training_mix.count > 0 {
        let d = [
            (o.live_mix.buy - o.training_mix.buy).abs(),
            (o.live_mix.sell - o.training_mix.sell).abs(),
            (o.live_mix.hold - o.training_mix.hold).abs(),
        ];
        let worst = d.iter().copied().fold(0.0, f64::max);
        if worst > cfg.max_mix_drift {
            out.push(alert(
                "signal_mix_drift",
                &o.version,
                Severity::Warning,
                format!(
                    "model {} live mix buy/sell/hold {:.0}/{:.0}/{:.0}% vs training {:.0}/{:.0}/{:.0}%",
                    o.version,
                    o.live_mix.buy * 100.0,
                    o.live_mix.sell * 100.0,
                    o.live_mix.hold * 100.0,
                    o.training_mix.buy * 100.0,
                    o.training_mix.sell * 100.0,
                    o.training_mix.hold * 100.0
                ),
                &[("drift", format!("{worst:.3}")), ("signals", o.live_mix.count.to_string())],
            ));
        }
    }
    let (wins, trades) = o.live;
    if trades >= cfg.min_trades && trades > 0 {
        let live = wins as f64 / trades as f64;
        if live < o.backtest_win_rate - cfg.win_rate_tolerance {
            out.push(alert(
                "live_win_rate_below_backtest",
                &o.version,
                Severity::Warning,
                format!(
                    "model {} wins {:.0}% of {trades} live trades, backtest {:.0}%",
                    o.version,
                    live * 100.0,
                    o.backtest_win_rate * 100.0
                ),
                &[
                    ("live_win_rate", format!("{live:.3}")),
                    ("trades", trades.to_string()),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(b: f64, s: f64, n: usize) -> SignalMix {
        SignalMix {
            buy: b,
            sell: s,
            hold: 1.0 - b - s,
            count: n,
        }
    }

    fn obs() -> Observation {
        Observation {
            version: "v1".into(),
            trained_until_ms: 0,
            now_ms: 3_600_000,
            training_mix: mix(0.35, 0.35, 1000),
            live_mix: mix(0.33, 0.37, 500),
            backtest_win_rate: 0.55,
            live: (12, 25),
        }
    }

    #[test]
    fn healthy_champion_raises_nothing() {
        assert!(assess(&MonitorConfig::default(), &obs()).is_empty());
    }

    #[test]
    fn stale_model_drifted_mix_and_low_win_rate_each_raise_their_alert() {
        let mut o = obs();
        o.now_ms = 100 * 3_600_000;
        o.live_mix = mix(0.05, 0.05, 500);
        o.live = (5, 25);
        let rules: Vec<_> = assess(&MonitorConfig::default(), &o)
            .into_iter()
            .map(|a| a.rule)
            .collect();
        assert_eq!(
            rules,
            [
                "model_stale",
                "signal_mix_drift",
                "live_win_rate_below_backtest"
            ]
        );
    }

    #[test]
    fn too_few_signals_or_trades_are_not_judged() {
        let mut o = obs();
        o.live_mix = mix(0.0, 0.0, 10);
        o.live = (0, 5);
        assert!(assess(&MonitorConfig::default(), &o).is_empty());
    }
}
