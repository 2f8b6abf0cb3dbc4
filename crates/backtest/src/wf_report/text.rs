//! The text parts: the summary the command prints and the CSV files.

use std::fmt::Write as _;

use crate::dates::{format_date, format_datetime};
use crate::engine::EquityPoint;
use crate::walkforward::{Curves, FoldResult, RunFigures, WalkForwardReport};

use super::{opt, pct};

/// The margin a fold's expected-value rule chose on its validation slice: a fraction, `none`
/// (it found no edge and holds) or `n/a` (the model does not price its trades).
pub(super) fn ev_margin(fr: &FoldResult) -> String {
    match &fr.expected_value {
        Some(ev) => ev
            .margin
            .map_or_else(|| "none".to_string(), |m| format!("{m}")),
        None => "n/a".to_string(),
    }
}

/// Each fold's expected-value rule as fitted on its validation slice (the margins tried, with
/// their validation trades and net return, and the one chosen), and the reliability curve of
/// the last fold's calibrated P(win): predicted against observed on that slice.
pub(super) fn calibration_section(r: &WalkForwardReport) -> String {
    let mut h = String::new();
    let fitted: Vec<_> = r
        .folds
        .iter()
        .filter_map(|f| f.expected_value.as_ref().map(|ev| (f.fold.index, ev)))
        .collect();
    let Some((last, last_ev)) = fitted.last() else {
        return h;
    };
    h.push_str("<h2>Expected value, fitted on each fold's validation slice</h2><table><tr><th>fold</th><th>calibration rows</th><th>round-trip cost</th><th>margins tried: validation trades, net</th><th>chosen</th></tr>");
    for (fold, ev) in &fitted {
        let trials: Vec<String> = ev
            .trials
            .iter()
            .map(|t| {
                format!(
                    "{:.4}: {}, {:+.2}%",
                    t.margin,
                    t.trades,
                    t.net_return * 100.0
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{fold}</td><td>{}</td><td>{:.3}%</td><td>{}</td><td>{}</td></tr>",
            ev.calibration_rows,
            ev.cost * 100.0,
            trials.join("; "),
            ev.margin
                .map_or_else(|| "none: no edge, holds".to_string(), |m| format!("{m}"))
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2>Reliability of P(win), fold {last}</h2><table><tr><th>side</th><th>predicted</th><th>observed</th><th>rows</th></tr>"
    );
    for (side, bins) in [
        ("long", &last_ev.reliability_long),
        ("short", &last_ev.reliability_short),
    ] {
        for b in bins {
            let _ = write!(
                h,
                "<tr><td>{side}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
                b.predicted, b.observed, b.rows
            );
        }
    }
    h.push_str("</table>");
    h
}

/// The exit plan a fold kept, and whether it passed on the validation slice.
fn kept_exits(fr: &FoldResult) -> String {
    match &fr.exits {
        Some(x) => {
            let label = x.trials.get(x.chosen).map_or("?", |t| t.label.as_str());
            if x.validated {
                label.to_string()
            } else {
                format!("{label} (none passed: holds)")
            }
        }
        None => "the run's".to_string(),
    }
}

/// The exit plans each fold tried on its validation slice: the margin each plan's rule chose
/// and its validation trades and net return, and the plan kept.
pub(super) fn exits_section(r: &WalkForwardReport) -> String {
    let mut h = String::new();
    if r.folds.iter().all(|f| f.exits.is_none()) {
        return h;
    }
    h.push_str("<h2>Exit plans, chosen on each fold's validation slice</h2><table><tr><th>fold</th><th>plans tried: margin, validation trades, net</th><th>kept</th></tr>");
    for fr in &r.folds {
        let Some(x) = &fr.exits else { continue };
        let tried: Vec<String> = x
            .trials
            .iter()
            .map(|t| match (t.margin, &t.error) {
                (_, Some(e)) => format!("{}: {e}", t.label),
                (Some(m), None) => format!(
                    "{}: {m}, {}, {:+.2}%",
                    t.label,
                    t.trades,
                    t.net_return * 100.0
                ),
                (None, None) => format!("{}: none", t.label),
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            fr.fold.index,
            tried.join("; "),
            kept_exits(fr)
        );
    }
    h.push_str("</table>");
    h
}

/// One line per fold and run: windows and figures.
pub fn folds_csv(r: &WalkForwardReport) -> String {
    let mut s = String::from(
        "fold,run,test_start,test_end,train_start,train_end,train_rows,auc_buy,auc_sell,\
         ev_margin,return,sharpe,max_drawdown_pct,trades,win_rate,profit_factor,fees,funding\n",
    );
    for fr in &r.folds {
        for run in [
            &fr.strategy,
            &fr.momentum,
            &fr.buy_and_hold,
            &fr.strategy_without_breaker,
        ] {
            let m = &run.metrics;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{:.6},{},{:.6},{},{:.4},{},{},{}",
                fr.fold.index,
                run.name,
                format_date(fr.fold.test_start),
                format_date(fr.fold.test_end),
                format_date(fr.fold.train_start),
                format_date(fr.fold.train_end),
                fr.train_rows,
                opt(fr.validation_auc_buy, 4),
                opt(fr.validation_auc_sell, 4),
                ev_margin(fr),
                run.total_return,
                opt(m.sharpe, 4),
                m.max_drawdown_pct,
                m.trades,
                m.win_rate,
                opt(m.profit_factor, 4),
                m.total_fees.round_dp(4),
                run.funding.round_dp(4),
            );
        }
    }
    s
}

/// The out-of-sample curves side by side on the strategy's time grid.
pub fn equity_csv(c: &Curves) -> String {
    let mut s = String::from("time,strategy,momentum,buy_and_hold,random_median\n");
    let at = |v: &[EquityPoint], i: usize| v.get(i).map(|p| p.equity.round_dp(4).to_string());
    for (i, p) in c.strategy.iter().enumerate() {
        let _ = writeln!(
            s,
            "{},{},{},{},{}",
            format_datetime(p.time_ms),
            p.equity.round_dp(4),
            at(&c.momentum, i).unwrap_or_default(),
            at(&c.buy_and_hold, i).unwrap_or_default(),
            at(&c.random_median, i).unwrap_or_default(),
        );
    }
    s
}

fn line(r: &RunFigures) -> String {
    let m = &r.metrics;
    format!(
        "{:<14} {:>9} {:>8} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6} {:>6} {:>10} {:>10} {:>9}",
        r.name.chars().take(14).collect::<String>(),
        pct(r.total_return),
        pct(r.cagr),
        opt(m.sharpe, 2),
        opt(m.sortino, 2),
        opt(r.calmar, 2),
        format!("{:.1}%", m.max_drawdown_pct * 100.0),
        format!("{:.1}d", r.max_drawdown_days),
        m.trades,
        format!("{:.1}%", m.win_rate * 100.0),
        m.total_fees.round_dp(2),
        r.funding.round_dp(2),
        opt(r.psr, 3),
    )
}

/// The text a person reads at the end of a run.
pub fn summary(r: &WalkForwardReport) -> String {
    let mut s = String::new();
    let (Some(first), Some(last)) = (r.folds.first(), r.folds.last()) else {
        return "no fold\n".into();
    };
    let _ = writeln!(
        s,
        "walk-forward: {} fold(s) ({}), out of sample {} → {}, {} symbol(s), {:?} model, {:.1} s",
        r.folds.len(),
        if r.config.anchored {
            "anchored"
        } else {
            "rolling"
        },
        format_date(first.fold.test_start),
        format_date(last.fold.test_end),
        r.symbols.len(),
        r.config.model.kind,
        r.seconds
    );
    let _ = writeln!(
        s,
        "{:<14} {:>9} {:>8} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6} {:>6} {:>10} {:>10} {:>9}",
        "run",
        "return",
        "CAGR",
        "Sharpe",
        "Sortino",
        "Calmar",
        "max DD",
        "DD len",
        "trades",
        "win",
        "fees",
        "funding",
        "PSR(0)"
    );
    for run in [&r.strategy, &r.momentum, &r.buy_and_hold] {
        let _ = writeln!(s, "{}", line(run));
    }
    let _ = writeln!(
        s,
        "{}   (the strategy with the breaker at its loosest: a diagnostic, not a result)",
        line(&r.strategy_without_breaker)
    );
    let rb = &r.random;
    let _ = writeln!(
        s,
        "random entries: {} paths at p = {:.5} per flat candle (median {} trades): median {}, \
         95th percentile {}; the strategy is at the {:.0}th percentile",
        rb.paths,
        rb.entry_probability,
        rb.median_trades,
        pct(rb.median_return),
        pct(rb.p95_return),
        rb.strategy_percentile * 100.0
    );
    let st = &r.strategy;
    let m = &st.metrics;
    let _ = writeln!(
        s,
        "costs of the strategy: fees {} (taker {} / maker {} of notional), funding {}, slippage \
         {} of each taker fill (in the fill prices); expectancy per trade after costs {}, \
         profit factor {}, exposure {:.1}%, turnover {:.1}×",
        m.total_fees.round_dp(2),
        r.config.backtest.fill.taker_fee,
        r.config.backtest.fill.maker_fee,
        st.funding.round_dp(2),
        r.config.backtest.fill.slippage,
        st.expectancy.round_dp(2),
        opt(m.profit_factor, 2),
        m.exposure * 100.0,
        st.turnover
    );
    let d = &r.deflated;
    if r.folds.iter().any(|f| f.exits.is_some()) {
        let kept: Vec<String> = r
            .folds
            .iter()
            .map(|f| format!("{}: {}", f.fold.index, kept_exits(f)))
            .collect();
        let _ = writeln!(
            s,
            "exit plans: {} tried per fold on its validation slice (each a trial); kept: {}",
            d.exit_plans,
            kept.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "deflated Sharpe: {} trial(s), V = {:.3e}, expected best per-day Sharpe by luck {:.4}, \
         strategy per-day Sharpe {} over {} days → DSR {}",
        d.trials,
        d.trial_sharpe_variance,
        d.expected_max_sharpe,
        opt(st.daily_sharpe, 4),
        st.days,
        opt(d.dsr, 3)
    );
    if let Some(sw) = &r.sweep {
        let _ = writeln!(
            s,
            "sweep: {} configurations, chosen {}; probability of backtest overfitting {} over {} \
             combinations",
            sw.configurations.len(),
            sw.chosen,
            opt(sw.pbo, 3),
            sw.pbo_combinations
        );
    }
    if let Some(t) = r.breaker_tripped_at {
        let _ = writeln!(
            s,
            "drawdown breaker: entries stopped at {} (max drawdown {} of the peak)",
            format_datetime(t),
            r.config.backtest.limits.max_drawdown_pct
        );
    }
    let _ = writeln!(s, "verdict: {}", r.verdict);
    s
}

// ---- the HTML page -------------------------------------------------------------------------
