//! The self-contained HTML pages (walk-forward and single backtest).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::dates::format_date;
use crate::engine::EquityPoint;
use crate::walkforward::{Curves, RunFigures, WalkForwardReport};

use super::charts::{drawdown_chart, equity_chart, esc, histogram};
use super::text::{calibration_section, ev_margin, exits_section, summary};
use super::{f, opt, pct};

/// Month-end to month-end returns of a curve (the first month from its first point).
fn monthly_returns(c: &[EquityPoint], initial: Decimal) -> BTreeMap<String, f64> {
    let mut ends: BTreeMap<String, f64> = BTreeMap::new();
    for p in c {
        ends.insert(format_date(p.time_ms)[..7].to_owned(), f(p.equity));
    }
    let mut prev = f(initial);
    ends.into_iter()
        .map(|(m, e)| {
            let r = if prev > 0.0 { e / prev - 1.0 } else { 0.0 };
            prev = e;
            (m, r)
        })
        .collect()
}

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

/// The same picture set for one backtest (`qtctl backtest`'s `report.html`): its equity beside
/// buy-and-hold when given, its drawdown, monthly returns and the distribution of its trades.
pub fn backtest_html(
    title: &str,
    m: &crate::report::Metrics,
    o: &crate::engine::BacktestOutcome,
    hold: Option<&[EquityPoint]>,
) -> String {
    let mut h = String::from(HEAD);
    let _ = write!(
        h,
        "<h1>{}</h1><pre>{}</pre><h2>Equity</h2>",
        esc(title),
        esc(&crate::report::summary(m))
    );
    let mut curves: Vec<(&str, &[EquityPoint])> = vec![("strategy", &o.equity)];
    if let Some(b) = hold {
        curves.push(("buy & hold (equal weight)", b));
    }
    h.push_str(&equity_chart(&curves));
    h.push_str("<h2>Drawdown</h2>");
    h.push_str(&drawdown_chart(&o.equity));
    h.push_str(&monthly_table(&o.equity, o.initial_equity));
    h.push_str("<h2>Trades: net PnL after every cost</h2>");
    let pnl: Vec<f64> = o.trades.iter().map(|t| f(t.net_pnl)).collect();
    h.push_str(&histogram(&pnl, Some((0.0, "0")), &|v| format!("{v:.0}")));
    h.push_str("</body></html>");
    inline(h)
}

/// The page without the SVG namespace (inline SVG in HTML needs none): nothing in a report
/// names a URL, so it opens the same with no network.
fn inline(h: String) -> String {
    h.replace(r#" xmlns="http://www.w3.org/2000/svg""#, "")
}

const HEAD: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Report</title>\
     <style>body{font-family:sans-serif;max-width:960px;margin:1em auto;color:#222}\
     table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;\
     text-align:right}th{background:#f4f4f4}pre{background:#f8f8f8;padding:8px;white-space:pre-wrap}\
     .bad{color:#b00}.good{color:#070}</style></head><body>";

fn monthly_table(c: &[EquityPoint], initial: Decimal) -> String {
    let mut h = String::from("<h2>Monthly returns</h2><table><tr>");
    let months = monthly_returns(c, initial);
    for m in months.keys() {
        let _ = write!(h, "<th>{m}</th>");
    }
    h.push_str("</tr><tr>");
    for v in months.values() {
        let color = if *v >= 0.0 { "#e5f5e0" } else { "#fee0d2" };
        let _ = write!(h, "<td style=\"background:{color}\">{}</td>", pct(*v));
    }
    h.push_str("</tr></table>");
    h
}

/// The out-of-sample equity of the strategy against each baseline, as one SVG (the report's
/// first chart; also written alone as `equity.svg`).
pub fn equity_svg(c: &Curves) -> String {
    equity_chart(&[
        ("strategy", &c.strategy),
        ("momentum", &c.momentum),
        ("buy & hold (equal weight)", &c.buy_and_hold),
        ("random entries (median path)", &c.random_median),
    ])
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
    h.push_str("<h2>Out-of-sample equity against the baselines</h2>");
    h.push_str(&equity_svg(c));
    h.push_str("<h2>Drawdown of the strategy</h2>");
    h.push_str(&drawdown_chart(&c.strategy));
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
    h.push_str(&monthly_table(
        &c.strategy,
        r.strategy.metrics.initial_equity,
    ));
    h.push_str("<h2>Trades: net PnL after every cost</h2>");
    let pnl: Vec<f64> = c.trades.iter().map(|t| f(t.net_pnl)).collect();
    h.push_str(&histogram(&pnl, Some((0.0, "0")), &|v| format!("{v:.0}")));
    let _ = write!(
        h,
        "<h2>Random entries: net return of {} paths (same exits, sizing, limits, costs and trade rate)</h2>",
        r.random.paths
    );
    h.push_str(&histogram(
        &r.random.returns,
        Some((
            r.strategy.total_return,
            &format!(
                "strategy {} ({:.0}th percentile)",
                pct(r.strategy.total_return),
                r.random.strategy_percentile * 100.0
            ),
        )),
        &|v| format!("{:.1}%", v * 100.0),
    ));
    let _ = write!(
        h,
        "<h2>Configuration</h2><pre>{}</pre></body></html>",
        esc(&serde_json::to_string_pretty(&r.config).unwrap_or_default())
    );
    inline(h)
}
