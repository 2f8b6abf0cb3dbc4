//! The figures of a run over a window, the deflated Sharpe ratio and the verdict.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::engine::BacktestOutcome;
use crate::report::{compute_metrics, daily_returns};
use crate::stats;

use super::*;

pub(super) fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Figures of one run restricted to `[from, to)`: the equity points in it, the trades that
/// closed in it, the equity before it as the start.
pub(super) fn figures(name: &str, o: &BacktestOutcome, from: i64, to: i64) -> RunFigures {
    let lo = o.equity.partition_point(|p| p.time_ms < from);
    let hi = o.equity.partition_point(|p| p.time_ms < to);
    let initial = if lo == 0 {
        o.initial_equity
    } else {
        o.equity[lo - 1].equity
    };
    let part = BacktestOutcome {
        trades: o
            .trades
            .iter()
            .filter(|t| t.exit_time >= from && t.exit_time < to)
            .cloned()
            .collect(),
        equity: o.equity[lo..hi].to_vec(),
        candles: o.candles,
        rejections: o.rejections.clone(),
        profiles: BTreeMap::new(),
        initial_equity: initial,
        leverage: o.leverage,
        breaker_tripped_at: o.breaker_tripped_at,
    };
    figures_of(name, &part)
}

pub(super) fn figures_of(name: &str, o: &BacktestOutcome) -> RunFigures {
    let m = compute_metrics(o);
    let returns = daily_returns(o.initial_equity, &o.equity);
    let total_return = if o.initial_equity > Decimal::ZERO {
        f((m.final_equity - o.initial_equity) / o.initial_equity)
    } else {
        0.0
    };
    let cagr = stats::cagr(f(o.initial_equity), f(m.final_equity), m.days).unwrap_or(0.0);
    let times: Vec<i64> = o.equity.iter().map(|p| p.time_ms).collect();
    let eq: Vec<f64> = o.equity.iter().map(|p| f(p.equity)).collect();
    let dd_ms = stats::drawdown_duration(&times, &eq).unwrap_or(0);
    let notional: Decimal = o
        .trades
        .iter()
        .map(|t| t.qty * (t.entry_price + t.exit_price))
        .sum();
    let mean_equity = if eq.is_empty() {
        f(o.initial_equity)
    } else {
        eq.iter().sum::<f64>() / eq.len() as f64
    };
    let sr = stats::sharpe_per_period(&returns);
    let skew = stats::skewness(&returns);
    let kurt = stats::kurtosis(&returns);
    let psr = match (sr, skew, kurt) {
        (Some(sr), Some(g3), Some(g4)) => {
            stats::probabilistic_sharpe(sr, 0.0, returns.len(), g3, g4)
        }
        _ => None,
    };
    RunFigures {
        name: name.to_owned(),
        total_return,
        cagr,
        calmar: stats::calmar(cagr, m.max_drawdown_pct),
        max_drawdown_days: dd_ms as f64 / DAY_MS as f64,
        expectancy: if m.trades == 0 {
            Decimal::ZERO
        } else {
            (o.trades.iter().map(|t| t.net_pnl).sum::<Decimal>() / Decimal::from(m.trades))
                .round_dp(8)
        },
        turnover: if mean_equity > 0.0 {
            f(notional) / mean_equity
        } else {
            0.0
        },
        funding: o.trades.iter().map(|t| t.funding).sum(),
        daily_sharpe: sr,
        skewness: skew,
        kurtosis: kurt,
        days: returns.len(),
        psr,
        metrics: m,
    }
}

/// The deflated Sharpe ratio of `best`, one of `configurations` tried in this run (`others`:
/// the per-day Sharpe ratios of the rest, where defined), with `prior` configurations tried
/// before. `V`, the variance
/// of the trials' Sharpe ratios, is measured on the sweep when it has two or more; otherwise
/// (one configuration, perhaps with prior trials whose ratios were not kept) it is the
/// variance of the random-entry paths' Sharpe ratios `null` — the spread that luck alone gives
/// a strategy with these exits and this trade rate. With a single trial the benchmark is 0 and
/// the DSR is the PSR.
pub fn deflate(
    best: &RunFigures,
    others: &[f64],
    configurations: usize,
    prior: usize,
    null: &[f64],
) -> Deflated {
    let mut srs: Vec<f64> = others.to_vec();
    if let Some(sr) = best.daily_sharpe {
        srs.push(sr);
    }
    let trials = (configurations + prior).max(1);
    let variance = |v: &[f64]| stats::std_dev(v).map_or(0.0, |s| s * s);
    let var = if srs.len() > 1 {
        variance(&srs)
    } else {
        variance(null)
    };
    let sr0 = stats::expected_max_sharpe(trials, var).unwrap_or(0.0);
    let dsr = match (best.daily_sharpe, best.skewness, best.kurtosis) {
        (Some(sr), Some(g3), Some(g4)) => stats::probabilistic_sharpe(sr, sr0, best.days, g3, g4),
        _ => None,
    };
    Deflated {
        trials,
        exit_plans: 1,
        trial_sharpe_variance: var,
        expected_max_sharpe: sr0,
        dsr,
    }
}

pub(super) fn verdict(
    s: &RunFigures,
    m: &RunFigures,
    h: &RunFigures,
    r: &RandomBaseline,
    d: &Deflated,
    beats: bool,
) -> String {
    let pct = |x: f64| format!("{:+.2}%", x * 100.0);
    let mut why = Vec::new();
    if s.total_return <= m.total_return {
        why.push(format!("momentum made {}", pct(m.total_return)));
    }
    if s.total_return <= h.total_return {
        why.push(format!("buy-and-hold made {}", pct(h.total_return)));
    }
    if s.total_return <= r.p95_return {
        why.push(format!(
            "it is at the {:.0}th percentile of {} random-entry paths (95th: {})",
            r.strategy_percentile * 100.0,
            r.paths,
            pct(r.p95_return)
        ));
    }
    match d.dsr {
        Some(p) if p >= 0.95 => {}
        Some(p) => why.push(format!(
            "its deflated Sharpe probability is {p:.3} over {} trial(s), below 0.95",
            d.trials
        )),
        None => why.push("its deflated Sharpe is undefined (too few days)".into()),
    }
    if beats {
        format!(
            "the strategy made {} out of sample and beats momentum, buy-and-hold and the 95th \
             percentile of random entries with a deflated Sharpe probability of {:.3}",
            pct(s.total_return),
            d.dsr.unwrap_or(0.0)
        )
    } else {
        format!(
            "the strategy made {} out of sample and should not trade: {}",
            pct(s.total_return),
            why.join("; ")
        )
    }
}
