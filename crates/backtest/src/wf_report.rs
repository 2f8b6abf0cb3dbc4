//! The files of a walk-forward run: `report.json` (everything), `folds.csv` (one line per
//! fold and run), `equity.csv` (the stitched out-of-sample curves side by side), `trades.csv`
//! (the strategy's trades) and `report.html`: one self-contained page (inline SVG, no script,
//! no network) with the equity of the strategy against each baseline, its drawdown, monthly
//! returns, the distribution of its trades and where it falls among the random-entry paths.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::BacktestError;
use crate::dates::{format_date, format_datetime};
use crate::engine::EquityPoint;
use crate::report::trades_csv;
use crate::walkforward::{Curves, FoldResult, RunFigures, WalkForwardReport};

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.digits$}"))
}

fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

/// Writes the report files into `out` (created); returns their paths.
///
/// # Errors
/// [`BacktestError::Io`] when a file cannot be written.
pub fn write(
    out: &Path,
    report: &WalkForwardReport,
    curves: &Curves,
) -> Result<Vec<String>, BacktestError> {
    std::fs::create_dir_all(out).map_err(|e| BacktestError::io(out, e))?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| BacktestError::Config(format!("report: {e}")))?;
    let files = [
        ("report.json", json),
        ("folds.csv", folds_csv(report)),
        ("equity.csv", equity_csv(curves)),
        ("trades.csv", trades_csv(&curves.trades)),
        ("report.html", html(report, curves)),
        ("equity.svg", equity_svg(curves)),
    ];
    let mut paths = Vec::new();
    for (name, body) in files {
        let p = out.join(name);
        std::fs::write(&p, body).map_err(|e| BacktestError::io(&p, e))?;
        paths.push(p.display().to_string());
    }
    Ok(paths)
}

/// The margin a fold's expected-value rule chose on its validation slice: a fraction, `none`
/// (it found no edge and holds) or `n/a` (the model does not price its trades).
fn ev_margin(fr: &FoldResult) -> String {
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
fn calibration_section(r: &WalkForwardReport) -> String {
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
fn exits_section(r: &WalkForwardReport) -> String {
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

const W: f64 = 900.0;
const COLORS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Nice round tick values covering `lo..hi`.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.is_nan() || lo.is_nan() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        out.push(v);
        v += step;
    }
    out
}

struct Frame {
    x0: i64,
    x1: i64,
    y0: f64,
    y1: f64,
    h: f64,
}

impl Frame {
    const L: f64 = 70.0;
    const R: f64 = 20.0;
    const T: f64 = 10.0;
    const B: f64 = 30.0;

    fn x(&self, t: i64) -> f64 {
        Self::L + (t - self.x0) as f64 / (self.x1 - self.x0).max(1) as f64 * (W - Self::L - Self::R)
    }

    fn y(&self, v: f64) -> f64 {
        Self::T + (self.y1 - v) / (self.y1 - self.y0).max(1e-12) * (self.h - Self::T - Self::B)
    }

    /// Axes with date ticks at month starts (or days on short spans) and value ticks.
    fn axes(&self, svg: &mut String, fmt: &dyn Fn(f64) -> String) {
        for v in ticks(self.y0, self.y1, 5) {
            let y = self.y(v);
            let _ = write!(
                svg,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
                Self::L,
                W - Self::R,
                Self::L - 4.0,
                y + 4.0,
                fmt(v)
            );
        }
        let day = 86_400_000i64;
        let span_days = (self.x1 - self.x0) / day;
        let step = if span_days > 120 {
            30
        } else if span_days > 40 {
            7
        } else {
            1.max(span_days / 8)
        };
        let mut t = self.x0.div_euclid(day) * day + day;
        let mut last_label = self.x0 - step * day;
        while t < self.x1 {
            let d = format_date(t);
            let month_start = d.ends_with("-01");
            let show = if step >= 30 {
                month_start
            } else {
                (t / day) % step == 0
            };
            if show && t - last_label > step * day / 2 {
                let x = self.x(t);
                let _ = write!(
                    svg,
                    r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{d}</text>"##,
                    Self::T,
                    self.h - Self::B,
                    self.h - Self::B + 15.0
                );
                last_label = t;
            }
            t += day;
        }
    }
}

fn polyline(svg: &mut String, fr: &Frame, pts: &[(i64, f64)], color: &str) {
    // At most ~2 points per pixel column.
    let stride = (pts.len() / 1800).max(1);
    let mut d = String::new();
    for (i, (t, v)) in pts.iter().enumerate() {
        if i % stride != 0 && i + 1 != pts.len() {
            continue;
        }
        let _ = write!(d, "{:.1},{:.1} ", fr.x(*t), fr.y(*v));
    }
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{d}"/>"#
    );
}

fn equity_chart(curves: &[(&str, &[EquityPoint])]) -> String {
    let all: Vec<(i64, f64)> = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| (p.time_ms, f(p.equity))))
        .collect();
    let (Some(x0), Some(x1)) = (all.iter().map(|p| p.0).min(), all.iter().map(|p| p.0).max())
    else {
        return "<p>no equity points</p>".into();
    };
    let y0 = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y1 = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((y1 - y0) * 0.05).max(1.0);
    let fr = Frame {
        x0,
        x1,
        y0: y0 - pad,
        y1: y1 + pad,
        h: 340.0,
    };
    let mut svg = format!(
        r#"<svg width="{W}" height="{}" xmlns="http://www.w3.org/2000/svg">"#,
        fr.h
    );
    // An opaque background: the chart is also a file of its own (equity.svg), viewed on any page.
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    fr.axes(&mut svg, &|v| format!("{v:.0}"));
    // Legend entries side by side, each as wide as its name (about 7 px a character at 12 px).
    let mut x = Frame::L + 10.0;
    for (i, (name, c)) in curves.iter().enumerate() {
        let pts: Vec<(i64, f64)> = c.iter().map(|p| (p.time_ms, f(p.equity))).collect();
        polyline(&mut svg, &fr, &pts, COLORS[i % COLORS.len()]);
        let _ = write!(
            svg,
            r#"<rect x="{x:.0}" y="16" width="12" height="3" fill="{}"/><text x="{:.0}" y="21" font-size="12">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 16.0,
            esc(name)
        );
        x += 16.0 + 7.0 * name.chars().count() as f64 + 20.0;
    }
    svg.push_str("</svg>");
    svg
}

fn drawdown_chart(c: &[EquityPoint]) -> String {
    let mut peak = f64::NEG_INFINITY;
    let dd: Vec<(i64, f64)> = c
        .iter()
        .map(|p| {
            let e = f(p.equity);
            peak = peak.max(e);
            (p.time_ms, if peak > 0.0 { e / peak - 1.0 } else { 0.0 })
        })
        .collect();
    let (Some(first), Some(last)) = (dd.first(), dd.last()) else {
        return String::new();
    };
    let worst = dd.iter().map(|p| p.1).fold(0.0, f64::min).min(-0.001);
    let fr = Frame {
        x0: first.0,
        x1: last.0,
        y0: worst * 1.05,
        y1: 0.0,
        h: 160.0,
    };
    let mut svg = format!(
        r#"<svg width="{W}" height="{}" xmlns="http://www.w3.org/2000/svg">"#,
        fr.h
    );
    fr.axes(&mut svg, &|v| format!("{:.0}%", v * 100.0));
    let stride = (dd.len() / 1800).max(1);
    let mut d = format!("{:.1},{:.1} ", fr.x(first.0), fr.y(0.0));
    for (i, (t, v)) in dd.iter().enumerate() {
        if i % stride == 0 || i + 1 == dd.len() {
            let _ = write!(d, "{:.1},{:.1} ", fr.x(*t), fr.y(*v));
        }
    }
    let _ = write!(d, "{:.1},{:.1}", fr.x(last.0), fr.y(0.0));
    let _ = write!(
        svg,
        r##"<polygon fill="#d62728" fill-opacity="0.35" stroke="#d62728" points="{d}"/></svg>"##
    );
    svg
}

/// A histogram of `values` with an optional marked value.
fn histogram(values: &[f64], mark: Option<(f64, &str)>, fmt: &dyn Fn(f64) -> String) -> String {
    if values.is_empty() {
        return "<p>nothing to draw</p>".into();
    }
    let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some((m, _)) = mark {
        lo = lo.min(m);
        hi = hi.max(m);
    }
    if hi.is_nan() || lo.is_nan() || hi <= lo {
        hi = lo + 1e-9;
    }
    let bins = 40usize;
    let mut counts = vec![0usize; bins];
    for v in values {
        let k = (((v - lo) / (hi - lo)) * bins as f64) as usize;
        counts[k.min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (h, l, r, t, b) = (200.0, 50.0, 20.0, 10.0, 30.0);
    let bw = (W - l - r) / bins as f64;
    let mut svg = format!(r#"<svg width="{W}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#);
    for (k, &c) in counts.iter().enumerate() {
        let bh = c as f64 / top * (h - t - b);
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#9ecae1" stroke="#6baed6"/>"##,
            l + bw * k as f64,
            h - b - bh,
            bw - 1.0
        );
    }
    for k in [0usize, bins / 4, bins / 2, 3 * bins / 4, bins] {
        let v = lo + (hi - lo) * k as f64 / bins as f64;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            l + bw * k as f64,
            h - b + 15.0,
            fmt(v)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
        l - 4.0,
        t + 10.0,
        top
    );
    if let Some((m, label)) = mark {
        let x = l + (m - lo) / (hi - lo) * (W - l - r);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{:.1}" stroke="#d62728" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#d62728">{}</text>"##,
            h - b,
            x + 4.0,
            t + 12.0,
            esc(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

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
    h
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
    h
}
