//! The one place that draws the reports' charts as inline SVG: UTC time axes, value axes,
//! lines, candles with trade marks, signed bars and histograms. Both `qtctl backtest`'s and
//! `qtctl walkforward`'s `report.html` (and the `equity.svg` files) are drawn from here, so a
//! chart reads the same in both. Every chart carries `data-chart` and its marks `data-*`
//! attributes naming what they show, so tests (and people) can read a page's content back.
//! No script, no URL, no network: the SVG opens anywhere.

mod draw;
mod series;

pub use draw::{balance_chart, bar_chart, candle_chart, equity_chart, histogram};
pub use series::{Bar, ChartSeries, chart_series};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

pub(crate) fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Text for SVG and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
