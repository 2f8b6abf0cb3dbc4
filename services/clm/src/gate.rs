//! The promotion gate: a challenger ships only when its out-of-sample backtest beats the
//! champion's on the same window (net PnL after fees higher by the configured margin, max
//! drawdown no worse) and its signal mix is healthy; the first model ships when it passes the
//! absolute minimums. With the walk-forward on (the default), its training recipe must also
//! have beaten the momentum rule, buy-and-hold and the 95th percentile of random entries out of
//! sample, fold by fold, with a deflated Sharpe probability of at least `min_dsr`. Pure:
//! numbers in, a decision with every check out.

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
    /// Smallest deflated Sharpe probability of the walk-forward (default 0.95).
    pub min_dsr: f64,
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
            min_dsr: 0.95,
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

/// What the walk-forward of the challenger's recipe found: its card in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkForwardCard {
    pub folds: usize,
    pub out_of_sample_start_ms: i64,
    pub out_of_sample_end_ms: i64,
    /// Net returns over the out-of-sample span (fractions of the initial equity).
    pub strategy_return: f64,
    pub strategy_trades: u64,
    pub strategy_max_drawdown_pct: f64,
    pub strategy_sharpe: Option<f64>,
    pub momentum_return: f64,
    pub buy_and_hold_return: f64,
    pub random_median_return: f64,
    pub random_p95_return: f64,
    pub random_paths: usize,
    /// Deflated Sharpe probability, and the trials it counted (every exit plan of every
    /// configuration judged so far and of this one).
    pub dsr: Option<f64>,
    pub trials: usize,
    /// Exit plans each fold tried on its validation slice (counted in `trials`).
    #[serde(default)]
    pub exit_plans: usize,
    pub verdict: String,
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
    walkforward: Option<&Result<WalkForwardCard, String>>,
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
    match walkforward {
        None => {}
        Some(Err(e)) => check("walkforward", false, format!("could not run: {e}")),
        Some(Ok(w)) => {
            let pct = |x: f64| format!("{:+.2}%", x * 100.0);
            check(
                "walkforward_beats_momentum",
                w.strategy_return > w.momentum_return,
                format!(
                    "{} vs momentum {} over {} folds",
                    pct(w.strategy_return),
                    pct(w.momentum_return),
                    w.folds
                ),
            );
            check(
                "walkforward_beats_buy_and_hold",
                w.strategy_return > w.buy_and_hold_return,
                format!(
                    "{} vs buy-and-hold {}",
                    pct(w.strategy_return),
                    pct(w.buy_and_hold_return)
                ),
            );
            check(
                "walkforward_beats_random",
                w.strategy_return > w.random_p95_return,
                format!(
                    "{} vs the 95th percentile {} of {} random-entry paths",
                    pct(w.strategy_return),
                    pct(w.random_p95_return),
                    w.random_paths
                ),
            );
            check(
                "walkforward_deflated_sharpe",
                w.dsr.is_some_and(|d| d >= cfg.min_dsr),
                format!(
                    "{} over {} trials, need {:.2}",
                    w.dsr
                        .map_or_else(|| "undefined".to_owned(), |d| format!("{d:.3}")),
                    w.trials,
                    cfg.min_dsr
                ),
            );
        }
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
        assert!(decide(&cfg, &cand("a", 50, 0.05, 20, (0.3, 0.3)), None, None).promote);
        let losing = decide(&cfg, &cand("a", -1, 0.05, 20, (0.3, 0.3)), None, None);
        assert!(!losing.promote);
        assert!(
            losing.why_not().contains("min_net_pnl"),
            "{}",
            losing.why_not()
        );
        let idle = decide(&cfg, &cand("a", 50, 0.05, 2, (0.3, 0.3)), None, None);
        assert!(idle.why_not().contains("min_trades"));
        let deep = decide(&cfg, &cand("a", 50, 0.30, 20, (0.3, 0.3)), None, None);
        assert!(deep.why_not().contains("max_drawdown"));
    }

    #[test]
    fn challenger_must_beat_champion_pnl_without_deeper_drawdown() {
        let cfg = GateConfig::default();
        let champ = cand("old", 100, 0.05, 20, (0.3, 0.3));
        assert!(
            decide(
                &cfg,
                &cand("new", 120, 0.05, 20, (0.3, 0.3)),
                Some(&champ),
                None
            )
            .promote
        );
        let worse = decide(
            &cfg,
            &cand("new", 90, 0.04, 20, (0.3, 0.3)),
            Some(&champ),
            None,
        );
        assert!(!worse.promote);
        assert!(worse.why_not().contains("beats_champion_net_pnl"));
        let deeper = decide(
            &cfg,
            &cand("new", 200, 0.06, 20, (0.3, 0.3)),
            Some(&champ),
            None,
        );
        assert!(!deeper.promote);
        assert_eq!(
            deeper.why_not().matches(':').count(),
            1,
            "{}",
            deeper.why_not()
        );
        assert!(deeper.why_not().contains("drawdown_no_worse"));
        let equal = decide(
            &cfg,
            &cand("new", 100, 0.05, 20, (0.3, 0.3)),
            Some(&champ),
            None,
        );
        assert!(!equal.promote, "a tie keeps the champion");
    }

    #[test]
    fn a_required_signal_mix_refuses_a_one_sided_or_idle_model_and_by_default_only_reports() {
        let cfg = GateConfig {
            min_action_share: 0.05,
            max_hold_share: 0.9,
            ..GateConfig::default()
        };
        let only_buys = decide(&cfg, &cand("a", 50, 0.05, 20, (0.6, 0.0)), None, None);
        assert!(only_buys.why_not().contains("signal_mix"));
        let holds = decide(&cfg, &cand("a", 50, 0.05, 20, (0.04, 0.04)), None, None);
        assert!(holds.why_not().contains("signal_mix"));
        // No edge, no trade: holding 92% of the time is no reason to refuse by default.
        let default = decide(
            &GateConfig::default(),
            &cand("a", 50, 0.05, 20, (0.04, 0.04)),
            None,
            None,
        );
        assert!(default.promote, "{}", default.why_not());
    }

    fn card(strategy: f64, dsr: Option<f64>) -> WalkForwardCard {
        WalkForwardCard {
            folds: 4,
            out_of_sample_start_ms: 0,
            out_of_sample_end_ms: 1,
            strategy_return: strategy,
            strategy_trades: 40,
            strategy_max_drawdown_pct: 0.03,
            strategy_sharpe: Some(2.0),
            momentum_return: -0.01,
            buy_and_hold_return: 0.02,
            random_median_return: -0.005,
            random_p95_return: 0.03,
            random_paths: 200,
            dsr,
            trials: 5,
            exit_plans: 1,
            verdict: String::new(),
        }
    }

    #[test]
    fn the_walk_forward_must_beat_every_baseline_with_a_deflated_sharpe_past_the_threshold() {
        let cfg = GateConfig::default();
        let c = cand("a", 50, 0.05, 20, (0.3, 0.3));
        let good = Ok(card(0.05, Some(0.97)));
        assert!(decide(&cfg, &c, None, Some(&good)).promote);
        // Above momentum and buy-and-hold, inside the random entries' 95th percentile.
        let lucky = decide(&cfg, &c, None, Some(&Ok(card(0.025, Some(0.97)))));
        assert_eq!(
            lucky.why_not(),
            "walkforward_beats_random: +2.50% vs the 95th percentile +3.00% of 200 random-entry paths"
        );
        let overfit = decide(&cfg, &c, None, Some(&Ok(card(0.05, Some(0.6)))));
        assert!(
            overfit
                .why_not()
                .starts_with("walkforward_deflated_sharpe: 0.600 over 5 trials"),
            "{}",
            overfit.why_not()
        );
        let short = decide(&cfg, &c, None, Some(&Err("too short".into())));
        assert!(!short.promote);
        assert_eq!(short.why_not(), "walkforward: could not run: too short");
    }
}
