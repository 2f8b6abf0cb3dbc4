//! Inline SVG charts: equity curves, drawdown, histograms.

use std::fmt::Write as _;

use crate::dates::format_date;
use crate::engine::EquityPoint;

use super::f;

const W: f64 = 900.0;
const COLORS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"];

pub(super) fn esc(s: &str) -> String {
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

pub(super) fn equity_chart(curves: &[(&str, &[EquityPoint])]) -> String {
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

pub(super) fn drawdown_chart(c: &[EquityPoint]) -> String {
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
pub(super) fn histogram(
    values: &[f64],
    mark: Option<(f64, &str)>,
    fmt: &dyn Fn(f64) -> String,
) -> String {
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
