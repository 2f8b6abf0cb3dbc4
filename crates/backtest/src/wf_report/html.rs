//! The walk-forward page: its verdict and figures, the common charts of [`crate::html`]
//! (equity against every baseline, candles with the trades, PnL by symbol and time, balance,
//! monthly returns, the trades and the random-entry distribution), the folds, and how each
//! fold chose its margins and exits.

use std::fmt::Write as _;

use crate::charts::{equity_chart, esc};
use crate::dates::format_date;
use crate::html::{HEAD, ReportCharts, charts_section, inline};
use crate::walkforward::{Curves, RunFigures, WalkForwardReport};

use super::text::{calibration_section, ev_margin, exits_section, summary};
use super::{opt, pct};

fn table_row(r: &RunFigures) -> String {
    let m = &r.metrics;
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td>\
         <td>{:.1}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&r.name),
        pct(r.total_return),
        pct(r.cagr),
        opt(m.sharpe, 2),
        opt(m.sortino, 2),
        opt(r.calmar, 2),
        m.max_drawdown_pct * 100.0,
        r.max_drawdown_days,
        m.trades,
        m.win_rate * 100.0,
        opt(m.profit_factor, 2),
        m.total_fees.round_dp(2),
        r.funding.round_dp(2),
        opt(r.psr, 3)
    )
}

/// The out-of-sample equity of the strategy against each baseline, as one SVG (the report's
/// first chart; also written alone as `equity.svg`).
pub fn equity_svg(c: &Curves) -> String {
    equity_chart(&curves(c), None)
}

fn curves(c: &Curves) -> Vec<(&str, &[crate::engine::EquityPoint])> {
    vec![
        ("strategy", &c.strategy),
        ("momentum", &c.momentum),
        ("buy & hold (equal weight)", &c.buy_and_hold),
        ("random entries (median path)", &c.random_median),
    ]
}

/// The self-contained HTML page.
pub fn html(r: &WalkForwardReport, c: &Curves) -> String {
    let mut h = String::from(HEAD);
    let _ = write!(
        h,
        "<h1>Walk-forward report</h1><p class=\"{}\"><b>Verdict:</b> {}</p><pre>{}</pre>",
        if r.beats_baselines { "good" } else { "bad" },
        esc(&r.verdict),
        esc(&summary(r))
    );
    h.push_str(&charts_section(&ReportCharts {
        curves: curves(c),
        initial_equity: r.strategy.metrics.initial_equity,
        trades: &c.trades,
        candles: &c.candles,
        random: Some((&r.random, r.strategy.total_return)),
    }));
    h.push_str(
        "<h2>Figures</h2><table><tr><th>run</th><th>return</th><th>CAGR</th><th>Sharpe</th>\
         <th>Sortino</th><th>Calmar</th><th>max DD</th><th>DD days</th><th>trades</th><th>win</th>\
         <th>PF</th><th>fees</th><th>funding</th><th>PSR(0)</th></tr>",
    );
    for run in [
        &r.strategy,
        &r.momentum,
        &r.buy_and_hold,
        &r.strategy_without_breaker,
    ] {
        h.push_str(&table_row(run));
    }
    h.push_str("</table>");
    h.push_str("<h2>Folds</h2><table><tr><th>fold</th><th>train</th><th>test</th><th>AUC long/short</th><th>EV margin</th><th>strategy</th><th>momentum</th><th>buy &amp; hold</th><th>trades</th><th>no breaker</th><th>its trades</th></tr>");
    for fr in &r.folds {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} → {}</td><td>{} → {}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            fr.fold.index,
            format_date(fr.fold.train_start),
            format_date(fr.fold.train_end),
            format_date(fr.fold.test_start),
            format_date(fr.fold.test_end),
            opt(fr.validation_auc_buy, 3),
            opt(fr.validation_auc_sell, 3),
            ev_margin(fr),
            pct(fr.strategy.total_return),
            pct(fr.momentum.total_return),
            pct(fr.buy_and_hold.total_return),
            fr.strategy.metrics.trades,
            pct(fr.strategy_without_breaker.total_return),
            fr.strategy_without_breaker.metrics.trades
        );
    }
    h.push_str("</table>");
    h.push_str(&calibration_section(r));
    h.push_str(&exits_section(r));
    let _ = write!(
        h,
        "<h2>Configuration</h2><pre>{}</pre></body></html>",
        esc(&serde_json::to_string_pretty(&r.config).unwrap_or_default())
    );
    inline(h)
}
