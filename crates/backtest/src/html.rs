//! The self-contained HTML pages' common part: the head, and the charts a trader reads — the
//! same in `qtctl backtest`'s and `qtctl walkforward`'s `report.html` (and in the report clm
//! writes) — drawn by [`crate::charts`]: equity with drawdown underneath and the baselines
//! beside it, each symbol's candles with its trades' entries, exits, stops and targets, PnL by
//! symbol, by hour of day and by weekday (UTC), the long/short balance, monthly returns, the
//! distribution of the trades, and where the strategy falls among random entries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use qt_events::PositionSide;
use rust_decimal::Decimal;

use crate::charts::{
    ChartSeries, balance_chart, bar_chart, candle_chart, equity_chart, esc, f, histogram,
};
use crate::dates::{format_date, format_datetime};
use crate::engine::{EquityPoint, Trade};
use crate::walkforward::RandomBaseline;

/// What the common charts are drawn from.
#[derive(Debug, Clone)]
pub struct ReportCharts<'a> {
    /// The strategy's equity first, then its baselines'.
    pub curves: Vec<(&'a str, &'a [EquityPoint])>,
    pub initial_equity: Decimal,
    pub trades: &'a [Trade],
    /// Each symbol's candles over the run's window.
    pub candles: &'a [ChartSeries],
    /// The random-entry paths and the strategy's net return (fraction) among them.
    pub random: Option<(&'a RandomBaseline, f64)>,
}

pub(crate) const HEAD: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Report</title>\
     <style>body{font-family:sans-serif;max-width:960px;margin:1em auto;color:#222}\
     table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;\
     text-align:right}th{background:#f4f4f4}pre{background:#f8f8f8;padding:8px;white-space:pre-wrap}\
     .bad{color:#b00}.good{color:#070}.note{color:#555;font-size:13px}\
     svg{max-width:100%;height:auto}</style></head><body>";

/// The page without the SVG namespace (inline SVG in HTML needs none): nothing in a report
/// names a URL, so it opens the same with no network.
pub(crate) fn inline(h: String) -> String {
    h.replace(r#" xmlns="http://www.w3.org/2000/svg""#, "")
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

/// Month-end to month-end returns of a curve (the first month from `initial`).
pub(crate) fn monthly_returns(c: &[EquityPoint], initial: Decimal) -> BTreeMap<String, f64> {
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

fn monthly_table(c: &[EquityPoint], initial: Decimal) -> String {
    let mut h = String::from("<h2>Monthly returns</h2><table data-table=\"monthly\"><tr>");
    let months = monthly_returns(c, initial);
    for m in months.keys() {
        let _ = write!(h, "<th>{m}</th>");
    }
    h.push_str("</tr><tr>");
    for (m, v) in &months {
        let color = if *v >= 0.0 { "#e5f5e0" } else { "#fee0d2" };
        let _ = write!(
            h,
            "<td data-month=\"{m}\" data-value=\"{v:.6}\" style=\"background:{color}\">{}</td>",
            pct(*v)
        );
    }
    h.push_str("</tr></table>");
    h
}

/// Net PnL (after fees and funding) and trade counts of the trades grouped by `key`, in key
/// order, every key of `all` present.
fn grouped(
    trades: &[Trade],
    all: &[String],
    key: &dyn Fn(&Trade) -> String,
) -> Vec<(String, f64, usize)> {
    let mut by: BTreeMap<String, (Decimal, usize)> = all
        .iter()
        .map(|k| (k.clone(), (Decimal::ZERO, 0)))
        .collect();
    for t in trades {
        let e = by.entry(key(t)).or_insert((Decimal::ZERO, 0));
        e.0 += t.net_pnl;
        e.1 += 1;
    }
    let order: Vec<String> = if all.is_empty() {
        by.keys().cloned().collect()
    } else {
        all.to_vec()
    };
    order
        .into_iter()
        .map(|k| {
            let (v, n) = by.get(&k).copied().unwrap_or((Decimal::ZERO, 0));
            (k, f(v.round_dp(2)), n)
        })
        .collect()
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// 0 = Monday, of a UTC time (1970-01-01 was a Thursday).
fn weekday(ms: i64) -> usize {
    (ms.div_euclid(86_400_000) + 3).rem_euclid(7) as usize
}

fn money(v: f64) -> String {
    format!("{v:.0}")
}

/// The charts both reports show, as HTML sections.
pub fn charts_section(c: &ReportCharts<'_>) -> String {
    let mut h = String::new();
    let strategy = c.curves.first().map_or(&[][..], |x| x.1);
    let (x0, x1) = match (strategy.first(), strategy.last()) {
        (Some(a), Some(b)) => (a.time_ms, b.time_ms),
        _ => (0, 1),
    };
    let _ = write!(
        h,
        "<h2>Equity and drawdown</h2><p class=\"note\">{} → {} UTC; the strategy after every \
         cost, dashed: its baselines over the same window</p>",
        format_datetime(x0),
        format_datetime(x1)
    );
    h.push_str(&equity_chart(&c.curves, None));

    h.push_str("<h2>Candles, entries, exits, stops and targets</h2><p class=\"note\">▲ long entry, ▼ short entry, ● exit (average over the legs); the line joins them, green when the trade made money after costs; dashed from entry to exit: the stop (red) and the take-profit targets (green) placed at the entry</p>");
    for s in c.candles {
        let trades: Vec<&Trade> = c.trades.iter().filter(|t| t.symbol == s.symbol).collect();
        let net: Decimal = trades.iter().map(|t| t.net_pnl).sum();
        let _ = write!(
            h,
            "<h3>{} <span class=\"note\">{} trades, net {}, bars of {} min</span></h3>",
            esc(&s.symbol),
            trades.len(),
            net.round_dp(2),
            s.bar_ms / 60_000
        );
        h.push_str(&candle_chart(s, &trades));
    }

    let symbols: Vec<String> = c.candles.iter().map(|s| s.symbol.clone()).collect();
    h.push_str("<h2>PnL by symbol</h2><p class=\"note\">net after fees and funding; trades under each bar</p>");
    h.push_str(&bar_chart(
        "pnl-by-symbol",
        &grouped(c.trades, &symbols, &|t| t.symbol.clone()),
        &money,
    ));
    let hours: Vec<String> = (0..24).map(|k| format!("{k:02}")).collect();
    h.push_str("<h2>PnL by hour of day and weekday (UTC)</h2><p class=\"note\">by the hour of the close, 00–23 UTC</p>");
    let by_hour = grouped(c.trades, &hours, &|t| {
        format!("{:02}", t.exit_time.rem_euclid(86_400_000) / 3_600_000)
    });
    h.push_str(&bar_chart("pnl-by-hour", &by_hour, &money));
    let days: Vec<String> = WEEKDAYS.iter().map(|d| (*d).to_owned()).collect();
    let by_day = grouped(c.trades, &days, &|t| {
        WEEKDAYS[weekday(t.exit_time)].to_owned()
    });
    h.push_str("<p class=\"note\">by the weekday of the close</p>");
    h.push_str(&bar_chart("pnl-by-weekday", &by_day, &money));
    let traded = |v: &[(String, f64, usize)]| -> Vec<(String, f64, usize)> {
        v.iter().filter(|x| x.2 > 0).cloned().collect()
    };
    let (bh, bd) = (traded(&by_hour), traded(&by_day));
    let best = |v: &[(String, f64, usize)]| v.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned();
    let worst = |v: &[(String, f64, usize)]| v.iter().min_by(|a, b| a.1.total_cmp(&b.1)).cloned();
    if let (Some(bh1), Some(wh), Some(bd1), Some(wd)) =
        (best(&bh), worst(&bh), best(&bd), worst(&bd))
    {
        let _ = write!(
            h,
            "<p class=\"note\">best hour {}:00 ({}), worst {}:00 ({}); best day {} ({}), worst {} ({})</p>",
            bh1.0,
            money(bh1.1),
            wh.0,
            money(wh.1),
            bd1.0,
            money(bd1.1),
            wd.0,
            money(wd.1)
        );
    }

    h.push_str("<h2>Long / short balance</h2><table data-table=\"sides\"><tr><th>side</th><th>trades</th><th>win</th><th>net PnL</th></tr>");
    for (name, side) in [("long", PositionSide::Long), ("short", PositionSide::Short)] {
        let v: Vec<&Trade> = c.trades.iter().filter(|t| t.side == side).collect();
        let wins = v.iter().filter(|t| t.net_pnl > Decimal::ZERO).count();
        let net: Decimal = v.iter().map(|t| t.net_pnl).sum();
        let _ = write!(
            h,
            "<tr data-side=\"{name}\" data-trades=\"{}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.len(),
            v.len(),
            if v.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.1}%", wins as f64 / v.len() as f64 * 100.0)
            },
            net.round_dp(2)
        );
    }
    h.push_str("</table><p class=\"note\">notional held on each side over time</p>");
    h.push_str(&balance_chart(c.trades, x0, x1));

    h.push_str(&monthly_table(strategy, c.initial_equity));
    h.push_str("<h2>Trades: net PnL after every cost</h2>");
    let pnl: Vec<f64> = c.trades.iter().map(|t| f(t.net_pnl)).collect();
    h.push_str(&histogram("trades", &pnl, Some((0.0, "0")), &money));
    if let Some((r, strategy_return)) = c.random {
        let _ = write!(
            h,
            "<h2>Random entries: net return of {} paths (same exits, sizing, limits, costs and trade rate)</h2>\
             <p class=\"note\">entry chance {:.5} per flat candle (median {} trades a path); median {}, 95th percentile {}</p>",
            r.paths,
            r.entry_probability,
            r.median_trades,
            pct(r.median_return),
            pct(r.p95_return)
        );
        h.push_str(&histogram(
            "random",
            &r.returns,
            Some((
                strategy_return,
                &format!(
                    "strategy {} ({:.0}th percentile)",
                    pct(strategy_return),
                    r.strategy_percentile * 100.0
                ),
            )),
            &|v| format!("{:.1}%", v * 100.0),
        ));
    }
    h
}

/// `qtctl backtest`'s page: the run's figures, then the common charts (its equity beside
/// buy-and-hold, and where it falls among random entries when they were run).
pub fn backtest_page(title: &str, m: &crate::report::Metrics, charts: &ReportCharts<'_>) -> String {
    let mut h = String::from(HEAD);
    let _ = write!(
        h,
        "<h1>{}</h1><pre>{}</pre>",
        esc(title),
        esc(&crate::report::summary(m))
    );
    h.push_str(&charts_section(charts));
    h.push_str("</body></html>");
    inline(h)
}

#[cfg(test)]
mod tests {
    use super::weekday;

    #[test]
    fn weekdays_of_known_dates() {
        assert_eq!(weekday(0), 3); // 1970-01-01, a Thursday
        assert_eq!(weekday(1_691_625_600_000), 3); // 2023-08-10, a Thursday
        assert_eq!(weekday(1_691_971_200_000), 0); // 2023-08-14, a Monday
    }
}
