//! The files of a walk-forward run: `report.json` (everything), `folds.csv` (one line per
//! fold and run), `equity.csv` (the stitched out-of-sample curves side by side), `trades.csv`
//! (the strategy's trades) and `report.html`: one self-contained page (inline SVG, no script,
//! no network) with the charts of [`crate::html`] — the equity of the strategy against each
//! baseline with its drawdown underneath, each symbol's candles with the trades, PnL by symbol,
//! hour and weekday, the long/short balance, monthly returns, the distribution of its trades
//! and where it falls among the random-entry paths — and the folds' figures.

use std::path::Path;

use crate::BacktestError;
use crate::report::trades_csv;
use crate::walkforward::{Curves, WalkForwardReport};

mod html;
mod text;

pub use html::{equity_svg, html};
pub use text::{equity_csv, folds_csv, summary};

pub(super) fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.digits$}"))
}

pub(super) fn pct(x: f64) -> String {
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
