//! The drawing: a frame (a plot area with a UTC time axis or a category axis, and a value
//! axis), and the charts built on it.

use std::fmt::Write as _;

use qt_events::PositionSide;

use crate::dates::{format_date, format_datetime};
use crate::engine::{EquityPoint, Trade};

use super::series::ChartSeries;
use super::{esc, f};

/// Width of every chart, px.
const W: f64 = 900.0;
const COLORS: [&str; 5] = ["#1f77b4", "#7f7f7f", "#ff7f0e", "#2ca02c", "#9467bd"];
const UP: &str = "#2ca02c";
const DOWN: &str = "#d62728";
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

/// Round value ticks covering `lo..hi`.
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
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// Round UTC times between `x0` and `x1` (at most about `n`), with their labels: dates on
/// spans over two days (days, weeks or month starts), `MM-DD HH:MM` on shorter ones.
pub(crate) fn time_ticks(x0: i64, x1: i64, n: i64) -> Vec<(i64, String)> {
    let span = (x1 - x0).max(1);
    let n = n.max(2);
    if span <= 2 * DAY {
        let step = [HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY]
            .into_iter()
            .find(|s| span / s <= n)
            .unwrap_or(DAY);
        let mut t = x0.div_euclid(step) * step;
        let mut out = Vec::new();
        while t <= x1 {
            if t >= x0 {
                out.push((t, format_datetime(t)[5..].to_owned()));
            }
            t += step;
        }
        return out;
    }
    let days = span / DAY;
    if let Some(step) = [1, 2, 7, 14].into_iter().find(|s| days / s <= n) {
        // Weeks start on Mondays (1970-01-05 was one).
        let origin = if step >= 7 { 4 * DAY } else { 0 };
        let mut t = (x0 - origin).div_euclid(step * DAY) * step * DAY + origin;
        let mut out = Vec::new();
        while t <= x1 {
            if t >= x0 {
                out.push((t, format_date(t)));
            }
            t += step * DAY;
        }
        return out;
    }
    let months = days / 30;
    let every = [1, 2, 3, 6, 12]
        .into_iter()
        .find(|m| months / m <= n)
        .unwrap_or(12);
    let mut out = Vec::new();
    let mut t = x0.div_euclid(DAY) * DAY;
    while t <= x1 {
        let d = format_date(t);
        let month: i64 = d[5..7].parse().unwrap_or(1);
        if t >= x0 && d.ends_with("-01") && (month - 1) % every == 0 {
            out.push((t, d[..7].to_owned()));
            t += 27 * DAY;
        }
        t += DAY;
    }
    out
}

/// A plot area: `left..left+width` × `top..top+height`, time (or any integer) along x, values
/// along y.
#[derive(Debug, Clone, Copy)]
struct Frame {
    x0: i64,
    x1: i64,
    y0: f64,
    y1: f64,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        self.left + (t - self.x0) as f64 / (self.x1 - self.x0).max(1) as f64 * self.width
    }

    fn y(&self, v: f64) -> f64 {
        self.top + (self.y1 - v) / (self.y1 - self.y0).max(1e-12) * self.height
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// Horizontal grid lines with value labels on the left (or right).
    fn value_axis(&self, svg: &mut String, fmt: &dyn Fn(f64) -> String, right: bool) {
        for v in ticks(self.y0, self.y1, 4) {
            let y = self.y(v);
            let (x, anchor) = if right {
                (self.left + self.width + 4.0, "start")
            } else {
                (self.left - 4.0, "end")
            };
            let _ = write!(
                svg,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{x:.1}" y="{:.1}" text-anchor="{anchor}" font-size="11" fill="#555">{}</text>"##,
                self.left,
                self.left + self.width,
                y + 4.0,
                fmt(v)
            );
        }
    }

    /// Vertical grid lines at round UTC times; labelled under the frame when `labels`.
    fn time_axis(&self, svg: &mut String, labels: bool) {
        for (t, label) in time_ticks(self.x0, self.x1, 7) {
            let x = self.x(t);
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#ececec"/>"##,
                self.top,
                self.bottom()
            );
            if labels {
                let _ = write!(
                    svg,
                    r##"<text data-axis="t" data-t="{t}" x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#555">{label}</text>"##,
                    self.bottom() + 14.0
                );
            }
        }
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#bbb"/>"##,
            self.left, self.top, self.width, self.height
        );
    }
}

fn open_svg(chart: &str, height: f64, extra: &str) -> String {
    format!(
        r#"<svg data-chart="{chart}"{extra} width="{W}" height="{height}" viewBox="0 0 {W} {height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    )
}

fn polyline(svg: &mut String, fr: &Frame, pts: &[(i64, f64)], color: &str, name: &str, dash: &str) {
    // At most about two points per pixel column.
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
        r#"<polyline data-curve="{}" fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{}"/>"#,
        esc(name),
        d.trim_end()
    );
}

fn legend(svg: &mut String, x0: f64, y: f64, entries: &[(&str, &str)]) {
    // Side by side, each as wide as its name (about 7 px a character at 12 px).
    let mut x = x0;
    for (name, color) in entries {
        let _ = write!(
            svg,
            r#"<rect x="{x:.0}" y="{:.0}" width="12" height="4" fill="{color}"/><text x="{:.0}" y="{y:.0}" font-size="12">{}</text>"#,
            y - 5.0,
            x + 16.0,
            esc(name)
        );
        x += 16.0 + 7.0 * name.chars().count() as f64 + 18.0;
    }
}

/// Equity curves (the first is the strategy, the others its baselines) on a UTC time axis, with
/// the strategy's drawdown from its running peak underneath on the same axis. With a `title`
/// the chart is a document of its own (`equity.svg`).
pub fn equity_chart(curves: &[(&str, &[EquityPoint])], title: Option<&str>) -> String {
    let all: Vec<(i64, f64)> = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| (p.time_ms, f(p.equity))))
        .collect();
    let (Some(x0), Some(x1)) = (all.iter().map(|p| p.0).min(), all.iter().map(|p| p.0).max())
    else {
        let mut svg = open_svg("equity", 60.0, "");
        svg.push_str(r#"<text x="20" y="30">no equity points</text></svg>"#);
        return svg;
    };
    let lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(1.0);
    let head = if title.is_some() { 50.0 } else { 28.0 };
    let eq = Frame {
        x0,
        x1,
        y0: lo - pad,
        y1: hi + pad,
        left: 80.0,
        top: head,
        width: W - 100.0,
        height: 280.0,
    };
    let strategy = curves.first().map_or(&[][..], |c| c.1);
    let mut peak = f64::NEG_INFINITY;
    let dd: Vec<(i64, f64)> = strategy
        .iter()
        .map(|p| {
            let e = f(p.equity);
            peak = peak.max(e);
            (p.time_ms, if peak > 0.0 { e / peak - 1.0 } else { 0.0 })
        })
        .collect();
    let worst = dd.iter().map(|p| p.1).fold(0.0, f64::min).min(-0.001);
    let ddf = Frame {
        y0: worst * 1.1,
        y1: 0.0,
        top: eq.bottom() + 14.0,
        height: 110.0,
        ..eq
    };
    let height = ddf.bottom() + 34.0;
    let mut svg = open_svg("equity", height, "");
    if let Some(t) = title {
        let _ = write!(
            svg,
            r#"<text x="{}" y="22" font-size="15">{}</text>"#,
            eq.left,
            esc(t)
        );
    }
    eq.value_axis(&mut svg, &|v| format!("{v:.0}"), false);
    eq.time_axis(&mut svg, false);
    let mut names = Vec::new();
    for (i, (name, c)) in curves.iter().enumerate() {
        let pts: Vec<(i64, f64)> = c.iter().map(|p| (p.time_ms, f(p.equity))).collect();
        let color = COLORS[i % COLORS.len()];
        let dash = if i == 0 {
            ""
        } else {
            r#" stroke-dasharray="5 3""#
        };
        polyline(&mut svg, &eq, &pts, color, name, dash);
        names.push((*name, color));
    }
    legend(&mut svg, eq.left + 8.0, head - 8.0, &names);
    ddf.value_axis(&mut svg, &|v| format!("{:.1}%", v * 100.0), false);
    ddf.time_axis(&mut svg, true);
    if let (Some(first), Some(last)) = (dd.first(), dd.last()) {
        let stride = (dd.len() / 1800).max(1);
        let mut d = format!("{:.1},{:.1} ", ddf.x(first.0), ddf.y(0.0));
        for (i, (t, v)) in dd.iter().enumerate() {
            if i % stride == 0 || i + 1 == dd.len() {
                let _ = write!(d, "{:.1},{:.1} ", ddf.x(*t), ddf.y(*v));
            }
        }
        let _ = write!(d, "{:.1},{:.1}", ddf.x(last.0), ddf.y(0.0));
        let _ = write!(
            svg,
            r##"<polygon data-curve="drawdown" data-worst="{:.6}" fill="{DOWN}" fill-opacity="0.3" stroke="{DOWN}" points="{d}"/>"##,
            dd.iter().map(|p| p.1).fold(0.0, f64::min)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#555">Drawdown of the strategy from its peak</text><text x="{:.1}" y="{:.1}" font-size="11" fill="#555" text-anchor="end">UTC</text></svg>"##,
        ddf.left + 6.0,
        ddf.top + 13.0,
        ddf.left + ddf.width,
        ddf.bottom() + 28.0
    );
    svg
}

/// One symbol's bars with its trades: an entry triangle (up for a long, down for a short) at
/// the entry price, an exit circle at the average exit price, a line between them (green when
/// the trade made money after costs), and the stop (red) and take-profit targets (green)
/// placed at the entry, dashed from the entry to the exit. Prices on the right, UTC under.
pub fn candle_chart(s: &ChartSeries, trades: &[&Trade]) -> String {
    let (Some(first), Some(last)) = (s.bars.first(), s.bars.last()) else {
        let mut svg = open_svg(
            "candles",
            40.0,
            &format!(r#" data-symbol="{}""#, esc(&s.symbol)),
        );
        svg.push_str(r#"<text x="20" y="25">no candles in the window</text></svg>"#);
        return svg;
    };
    let x0 = first.t;
    let x1 = last.t + s.bar_ms;
    let mut lo = s.bars.iter().map(|b| f(b.l)).fold(f64::INFINITY, f64::min);
    let mut hi = s
        .bars
        .iter()
        .map(|b| f(b.h))
        .fold(f64::NEG_INFINITY, f64::max);
    for t in trades {
        for p in [t.entry_price, t.exit_price, t.stop_price]
            .into_iter()
            .chain(t.targets.iter().copied())
            .filter(|p| !p.is_zero())
        {
            lo = lo.min(f(p));
            hi = hi.max(f(p));
        }
    }
    let pad = ((hi - lo) * 0.04).max(hi.abs() * 1e-4).max(1e-9);
    let fr = Frame {
        x0,
        x1,
        y0: lo - pad,
        y1: hi + pad,
        left: 10.0,
        top: 10.0,
        width: W - 80.0,
        height: 300.0,
    };
    let mut svg = open_svg(
        "candles",
        fr.bottom() + 22.0,
        &format!(
            r#" data-symbol="{}" data-bar-ms="{}" data-trades="{}""#,
            esc(&s.symbol),
            s.bar_ms,
            trades.len()
        ),
    );
    let digits = if hi >= 100.0 {
        1
    } else if hi >= 1.0 {
        3
    } else {
        5
    };
    fr.value_axis(&mut svg, &|v| format!("{v:.digits$}"), true);
    fr.time_axis(&mut svg, true);
    let bw = (fr.width / s.bars.len() as f64 * 0.7).max(0.6);
    for b in &s.bars {
        let x = fr.x(b.t + s.bar_ms / 2);
        let color = if b.c >= b.o { UP } else { DOWN };
        let (top, bottom) = (fr.y(f(b.o.max(b.c))), fr.y(f(b.o.min(b.c))));
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}"/><rect x="{:.1}" y="{top:.1}" width="{bw:.1}" height="{:.1}" fill="{color}"/>"#,
            fr.y(f(b.h)),
            fr.y(f(b.l)),
            x - bw / 2.0,
            (bottom - top).max(0.6)
        );
    }
    for t in trades {
        let (xa, xb) = (
            fr.x(t.entry_time),
            fr.x(t.exit_time).max(fr.x(t.entry_time) + 2.0),
        );
        let level = |svg: &mut String, kind: &str, p: rust_decimal::Decimal, color: &str| {
            let y = fr.y(f(p));
            let _ = write!(
                svg,
                r#"<line data-level="{kind}" data-price="{p}" x1="{xa:.1}" x2="{xb:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{color}" stroke-width="1.2" stroke-dasharray="3 2"/>"#
            );
        };
        if !t.stop_price.is_zero() {
            level(&mut svg, "stop", t.stop_price, DOWN);
        }
        for p in &t.targets {
            level(&mut svg, "target", *p, UP);
        }
        let (ya, yb) = (fr.y(f(t.entry_price)), fr.y(f(t.exit_price)));
        let won = t.net_pnl > rust_decimal::Decimal::ZERO;
        let _ = write!(
            svg,
            r#"<line x1="{xa:.1}" x2="{xb:.1}" y1="{ya:.1}" y2="{yb:.1}" stroke="{}" stroke-width="1"/>"#,
            if won { UP } else { DOWN }
        );
        let long = t.side == PositionSide::Long;
        let tip = format!(
            "{} {} {} → {} {}, net {}",
            if long { "long" } else { "short" },
            format_datetime(t.entry_time),
            t.entry_price,
            format_datetime(t.exit_time),
            t.exit_price.round_dp(6),
            t.net_pnl.round_dp(2)
        );
        let (dy, h) = if long { (1.0, 9.0) } else { (-1.0, -9.0) };
        let _ = write!(
            svg,
            r##"<path data-mark="entry" data-side="{}" data-price="{}" data-t="{}" d="M{xa:.1} {:.1} l-5 {h:.1} h10 z" fill="#1f6feb" stroke="white" stroke-width="0.6"><title>{}</title></path><circle data-mark="exit" data-price="{}" data-t="{}" cx="{xb:.1}" cy="{yb:.1}" r="3.5" fill="#ff9f1c" stroke="white" stroke-width="0.6"><title>{}</title></circle>"##,
            if long { "long" } else { "short" },
            t.entry_price,
            t.entry_time,
            ya + dy,
            esc(&tip),
            t.exit_price,
            t.exit_time,
            esc(&tip)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Signed bars, one per labelled value (green up, red down), with the value over each bar.
/// `items`: label, value, trades behind it.
pub fn bar_chart(
    chart: &str,
    items: &[(String, f64, usize)],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let height = 220.0;
    let mut svg = open_svg(chart, height, "");
    if items.is_empty() {
        svg.push_str(r#"<text x="20" y="30">no trades</text></svg>"#);
        return svg;
    }
    let hi = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let lo = items.iter().map(|i| i.1).fold(0.0, f64::min);
    let pad = ((hi - lo) * 0.12).max(1e-9);
    let fr = Frame {
        x0: 0,
        x1: items.len() as i64,
        y0: lo - if lo < 0.0 { pad } else { 0.0 },
        y1: hi + if hi > 0.0 { pad } else { 0.0 },
        left: 70.0,
        top: 12.0,
        width: W - 90.0,
        height: height - 48.0,
    };
    fr.value_axis(&mut svg, fmt, false);
    let zero = fr.y(0.0);
    let bw = fr.width / items.len() as f64;
    for (k, (label, v, n)) in items.iter().enumerate() {
        let x = fr.x(k as i64);
        let y = fr.y(*v);
        let (top, h) = if *v >= 0.0 {
            (y, zero - y)
        } else {
            (zero, y - zero)
        };
        let _ = write!(
            svg,
            r#"<rect data-bar="{}" data-value="{v:.2}" data-trades="{n}" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} over {n} trade(s)</title></rect>"#,
            esc(label),
            x + bw * 0.12,
            bw * 0.76,
            h.max(0.5),
            if *v >= 0.0 { UP } else { DOWN },
            esc(label),
            fmt(*v)
        );
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#333">{}</text>"##,
            x + bw / 2.0,
            fr.bottom() + 15.0,
            esc(label)
        );
        if items.len() <= 31 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="{}" fill="#555">{}</text>"##,
                x + bw / 2.0,
                fr.bottom() + 29.0,
                if items.len() > 12 { 9 } else { 11 },
                n
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="{:.1}" x2="{:.1}" y1="{zero:.1}" y2="{zero:.1}" stroke="#555"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#555">trades</text></svg>"##,
        fr.left,
        fr.left + fr.width,
        fr.left - 4.0,
        fr.bottom() + 29.0
    );
    svg
}

/// The gross notional held long (above the line) and short (below) over time, from the
/// trades' entries and exits, on a UTC axis over `[x0, x1]`.
pub fn balance_chart(trades: &[Trade], x0: i64, x1: i64) -> String {
    let cols = 600usize;
    let span = (x1 - x0).max(1);
    let mut long = vec![0.0f64; cols];
    let mut short = vec![0.0f64; cols];
    let col =
        |t: i64| (((t - x0).clamp(0, span) as f64 / span as f64) * (cols - 1) as f64) as usize;
    for t in trades {
        let notional = f(t.entry_price * t.qty);
        let side = if t.side == PositionSide::Long {
            &mut long
        } else {
            &mut short
        };
        for v in side
            .iter_mut()
            .take(col(t.exit_time) + 1)
            .skip(col(t.entry_time))
        {
            *v += notional;
        }
    }
    let hi = long.iter().copied().fold(1e-9, f64::max);
    let lo = -short.iter().copied().fold(1e-9, f64::max);
    let fr = Frame {
        x0,
        x1: x0 + span,
        y0: lo * 1.1,
        y1: hi * 1.1,
        left: 80.0,
        top: 10.0,
        width: W - 100.0,
        height: 150.0,
    };
    let mut svg = open_svg("balance", fr.bottom() + 22.0, "");
    fr.value_axis(&mut svg, &|v| format!("{v:.0}"), false);
    fr.time_axis(&mut svg, true);
    let t_of = |k: usize| x0 + (span as f64 * k as f64 / (cols - 1) as f64) as i64;
    for (name, values, sign, color) in [("long", &long, 1.0, UP), ("short", &short, -1.0, DOWN)] {
        let mut d = format!("{:.1},{:.1} ", fr.x(x0), fr.y(0.0));
        for (k, v) in values.iter().enumerate() {
            let _ = write!(d, "{:.1},{:.1} ", fr.x(t_of(k)), fr.y(sign * v));
        }
        let _ = write!(d, "{:.1},{:.1}", fr.x(x0 + span), fr.y(0.0));
        let _ = write!(
            svg,
            r#"<polygon data-curve="{name}" fill="{color}" fill-opacity="0.45" stroke="{color}" stroke-width="0.8" points="{d}"/>"#
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#555"/><text x="{:.1}" y="24" font-size="11" fill="#555">long notional ↑ · short notional ↓</text></svg>"##,
        fr.left,
        fr.left + fr.width,
        fr.y(0.0),
        fr.y(0.0),
        fr.left + 6.0
    );
    svg
}

/// A histogram of `values` (40 bins) with an optional marked value (a red line labelled).
pub fn histogram(
    chart: &str,
    values: &[f64],
    mark: Option<(f64, &str)>,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let height = 210.0;
    let mut svg = open_svg(
        chart,
        height,
        &format!(r#" data-values="{}""#, values.len()),
    );
    if values.is_empty() {
        svg.push_str(r#"<text x="20" y="30">nothing to draw</text></svg>"#);
        return svg;
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
    let fr = Frame {
        x0: 0,
        x1: bins as i64,
        y0: 0.0,
        y1: top * 1.08,
        left: 60.0,
        top: 24.0,
        width: W - 80.0,
        height: height - 24.0 - 32.0,
    };
    fr.value_axis(&mut svg, &|v| format!("{v:.0}"), false);
    let bw = fr.width / bins as f64;
    for (k, &c) in counts.iter().enumerate() {
        let y = fr.y(c as f64);
        let _ = write!(
            svg,
            r##"<rect data-count="{c}" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#9ecae1" stroke="#6baed6"/>"##,
            fr.x(k as i64),
            (bw - 1.0).max(0.5),
            fr.bottom() - y
        );
    }
    for k in [0usize, bins / 4, bins / 2, 3 * bins / 4, bins] {
        let v = lo + (hi - lo) * k as f64 / bins as f64;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#555">{}</text>"##,
            fr.x(k as i64),
            fr.bottom() + 15.0,
            fmt(v)
        );
    }
    if let Some((m, label)) = mark {
        let x = fr.left + (m - lo) / (hi - lo) * fr.width;
        let anchor = if x > fr.left + fr.width * 0.6 {
            ("end", x - 4.0)
        } else {
            ("start", x + 4.0)
        };
        let _ = write!(
            svg,
            r##"<line data-mark="value" data-value="{m:.6}" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{DOWN}" stroke-width="2"/><text x="{:.1}" y="16" font-size="12" fill="{DOWN}" text-anchor="{}">{}</text>"##,
            fr.top - 6.0,
            fr.bottom(),
            anchor.1,
            anchor.0,
            esc(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_are_round_utc_times_inside_the_span() {
        // 2023-08-10 → 2023-09-20: weekly Mondays
        let (a, b) = (1_691_625_600_000, 1_695_168_000_000);
        let t = time_ticks(a, b, 7);
        assert!(t.iter().all(|(x, _)| *x >= a && *x <= b));
        assert_eq!(t[0].1, "2023-08-14");
        assert!(t.len() >= 5 && t.len() <= 7, "{t:?}");
        // a day: every 3 or 6 hours, with the time
        let t = time_ticks(a, a + DAY, 7);
        assert_eq!(t[0].1, "08-10 00:00");
        // two years: month starts
        let t = time_ticks(a, a + 730 * DAY, 7);
        assert!(t.iter().all(|(_, l)| l.len() == 7), "{t:?}");
    }
}
