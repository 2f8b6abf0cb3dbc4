//! The promotion gate: a challenger ships only when its out-of-sample backtest beats the
//! champion's on the same window (net PnL after fees higher by the configured margin, max
//! drawdown no worse) and its signal mix is healthy; the first model ships when it passes the
//! absolute minimums. Pure: numbers in, a decision with every check out.

use qt_models::SignalMix;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The criteria. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Fewest backtest trades a model needs on the out-of-sample window (default 5).
    pub min_trades: u64,
    /// Smallest out-of-sample net PnL (after fees) of any shipped model (default 0).
    pub min_net_pnl: Decimal,
    /// Deepest out-of-sample drawdown allowed, fraction of the peak (default 0.15).
    pub max_drawdown_pct: f64,
    /// BUY and SELL each at least this share of the decisions (default 0: a model that
    /// decides by expected value holds wherever it sees no edge, so the mix is reported, not
    /// required).
    pub min_action_share: f64,
    /// HOLD at most this share of the decisions (default 1).
    pub max_hold_share: f64,
    /// The challenger's net PnL must exceed the champion's by more than this (default 0).
    pub min_improvement: Decimal,
    /// How much deeper (fraction points) the challenger's drawdown may be than the
    /// champion's (default 0: no worse).
    pub drawdown_tolerance: f64,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            min_trades: 5,
            min_net_pnl: Decimal::ZERO,
            max_drawdown_pct: 0.15,
            min_action_share: 0.0,
            max_hold_share: 1.0,
            min_improvement: Decimal::ZERO,
            drawdown_tolerance: 0.0,
        }
    }
}

/// One model's figures on the out-of-sample window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub version: String,
    pub net_pnl: Decimal,
    pub max_drawdown_pct: f64,
    pub trades: u64,
    pub win_rate: f64,
    /// What the model said on the window's rows.
    pub signal_mix: SignalMix,
}

/// One criterion and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The gate's answer, kept with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    pub promote: bool,
    pub checks: Vec<Check>,
}

impl GateDecision {
    /// The failed checks, joined: why the champion stays (empty when promoted).
    pub fn why_not(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Decides whether `challenger` replaces `champion` (or, without one, whether it may ship).
pub fn decide(
    cfg: &GateConfig,
    challenger: &Candidate,
    champion: Option<&Candidate>,
) -> GateDecision {
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    };
    let c = challenger;
    check(
        "min_trades",
        c.trades >= cfg.min_trades,
        format!("{} trades, need {}", c.trades, cfg.min_trades),
    );
    check(
        "min_net_pnl",
        c.net_pnl >= cfg.min_net_pnl,
        format!("net PnL {} after fees, need {}", c.net_pnl, cfg.min_net_pnl),
    );
    check(
        "max_drawdown",
        c.max_drawdown_pct <= cfg.max_drawdown_pct,
        format!(
            "drawdown {:.2}%, limit {:.2}%",
            c.max_drawdown_pct * 100.0,
            cfg.max_drawdown_pct * 100.0
        ),
    );
    let m = &c.signal_mix;
    check(
        "signal_mix",
        m.count > 0
            && m.buy >= cfg.min_action_share
            && m.sell >= cfg.min_action_share
            && m.hold <= cfg.max_hold_share,
        format!(
            "buy {:.1}% sell {:.1}% hold {:.1}% of {} (BUY and SELL >= {:.1}%, HOLD <= {:.1}%)",
            m.buy * 100.0,
            m.sell * 100.0,
            m.hold * 100.0,
            m.count,
            cfg.min_action_share * 100.0,
            cfg.max_hold_share * 100.0
        ),
    );
    if let Some(ch) = champion {
        check(
            "beats_champion_net_pnl",
            c.net_pnl > ch.net_pnl + cfg.min_improvement,
            format!(
                "challenger {} vs champion {} ({}), margin {}",
                c.net_pnl, ch.net_pnl, ch.version, cfg.min_improvement
            ),
        );
        check(
            "drawdown_no_worse",
            c.max_drawdown_pct <= ch.max_drawdown_pct + cfg.drawdown_tolerance,
            format!(
                "challenger {:.2}% vs champion {:.2}%, tolerance {:.2} points",
                c.max_drawdown_pct * 100.0,
                ch.max_drawdown_pct * 100.0,
                cfg.drawdown_tolerance * 100.0
            ),
        );
    }
    let promote = checks.iter().all(|c| c.passed);
    GateDecision { promote, checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(version: &str, pnl: i64, dd: f64, trades: u64, mix: (f64, f64)) -> Candidate {
        Candidate {
            version: version.into(),
            net_pnl: Decimal::from(pnl),
            max_drawdown_pct: dd,
            trades,
            win_rate: 0.5,
            signal_mix: SignalMix {
                buy: mix.0,
                sell: mix.1,
                hold: 1.0 - mix.0 - mix.1,
                count: 1000,
            },
        }
    }

    #[test]
    fn first_model_ships_only_when_it_passes_the_absolute_minimums() {
        let cfg = GateConfig::default();
        assert!(decide(&cfg, &cand("a", 50, 0.05, 20, (0.3, 0.3)), None).promote);
        let losing = decide(&cfg, &cand("a", -1, 0.05, 20, (0.3, 0.3)), None);
        assert!(!losing.promote);
        assert!(
            losing.why_not().contains("min_net_pnl"),
            "{}",
            losing.why_not()
        );
        let idle = decide(&cfg, &cand("a", 50, 0.05, 2, (0.3, 0.3)), None);
        assert!(idle.why_not().contains("min_trades"));
        let deep = decide(&cfg, &cand("a", 50, 0.30, 20, (0.3, 0.3)), None);
        assert!(deep.why_not().contains("max_drawdown"));
    }

    #[test]
    fn challenger_must_beat_champion_pnl_without_deeper_drawdown() {
        let cfg = GateConfig::default();
        let champ = cand("old", 100, 0.05, 20, (0.3, 0.3));
        assert!(decide(&cfg, &cand("new", 120, 0.05, 20, (0.3, 0.3)), Some(&champ)).promote);
        let worse = decide(&cfg, &cand("new", 90, 0.04, 20, (0.3, 0.3)), Some(&champ));
        assert!(!worse.promote);
        assert!(worse.why_not().contains("beats_champion_net_pnl"));
        let deeper = decide(&cfg, &cand("new", 200, 0.06, 20, (0.3, 0.3)), Some(&champ));
        assert!(!deeper.promote);
        assert_eq!(
            deeper.why_not().matches(':').count(),
            1,
            "{}",
            deeper.why_not()
        );
        assert!(deeper.why_not().contains("drawdown_no_worse"));
        let equal = decide(&cfg, &cand("new", 100, 0.05, 20, (0.3, 0.3)), Some(&champ));
        assert!(!equal.promote, "a tie keeps the champion");
    }

    #[test]
    fn a_required_signal_mix_refuses_a_one_sided_or_idle_model_and_by_default_only_reports() {
        let cfg = GateConfig {
            min_action_share: 0.05,
            max_hold_share: 0.9,
            ..GateConfig::default()
        };
        let only_buys = decide(&cfg, &cand("a", 50, 0.05, 20, (0.6, 0.0)), None);
        assert!(only_buys.why_not().contains("signal_mix"));
        let holds = decide(&cfg, &cand("a", 50, 0.05, 20, (0.04, 0.04)), None);
        assert!(holds.why_not().contains("signal_mix"));
        // No edge, no trade: holding 92% of the time is no reason to refuse by default.
        let default = decide(
            &GateConfig::default(),
            &cand("a", 50, 0.05, 20, (0.04, 0.04)),
            None,
        );
        assert!(default.promote, "{}", default.why_not());
    }
}
