//! Metrics of a run and the files of its report: trades CSV, equity-curve CSV, metrics JSON and
//! the equity-curve SVG (drawn by [`crate::charts`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qt_events::PositionSide;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::BacktestError;
use crate::dates::format_datetime;
use crate::engine::{BacktestOutcome, EquityPoint, Trade};

const DAY_MS: i64 = 86_400_000;

/// The figures of a run. Money is `Decimal`; ratios are `f64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub initial_equity: Decimal,
    pub final_equity: Decimal,
    pub net_pnl: Decimal,
    pub total_fees: Decimal,
    /// Funding paid by the trades (negative: earned).
    #[serde(default)]
    pub total_funding: Decimal,
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    /// Winning trades / trades (net of fees), 0..1.
    pub win_rate: f64,
    /// Sum of wins / |sum of losses|; `None` when there is no loss.
    pub profit_factor: Option<f64>,
    /// Mean net PnL of a winning trade.
    pub avg_win: Decimal,
    /// Mean net loss of a losing trade, as a positive amount.
    pub avg_loss: Decimal,
    /// Deepest fall of equity from a previous peak, in money and as a fraction of that peak.
    pub max_drawdown: Decimal,
    pub max_drawdown_pct: f64,
    /// Annualized (×√365) Sharpe ratio of daily returns; `None` with under two days.
    pub sharpe: Option<f64>,
    /// Annualized Sortino ratio of daily returns; `None` without a losing day.
    pub sortino: Option<f64>,
    /// Share of the time with at least one position open, 0..1.
    pub exposure: f64,
    /// Length of the equity curve in days.
    pub days: f64,
    pub trades_per_day: f64,
    pub long_trades: u64,
    pub short_trades: u64,
    pub long_pnl: Decimal,
    pub short_pnl: Decimal,
    /// Mean entry notional of a trade.
    pub avg_notional: Decimal,
    /// Leverage the entries were sized with.
    pub leverage: u32,
    /// Candles processed, warm-up included.
    pub candles: u64,
    /// Entries refused, by reason code.
    pub rejections: BTreeMap<String, u64>,
    /// When the drawdown breaker stopped entries (ms); nobody resumes in a backtest.
    #[serde(default)]
    pub breaker_tripped_at: Option<i64>,
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Deepest peak-to-trough fall: (amount, fraction of the peak).
pub fn max_drawdown(equity: &[Decimal]) -> (Decimal, f64) {
    let mut peak: Option<Decimal> = None;
    let (mut worst, mut worst_pct) = (Decimal::ZERO, 0.0f64);
    for &e in equity {
        let p = *peak.get_or_insert(e);
        if e > p {
            peak = Some(e);
            continue;
        }
        let dd = p - e;
        if dd > worst {
            worst = dd;
        }
        if p > Decimal::ZERO {
            worst_pct = worst_pct.max(f(dd / p));
        }
    }
    (worst, worst_pct)
}

/// Returns of equity from one UTC day's last point to the next, the first day measured from
/// `initial`.
pub fn daily_returns(initial: Decimal, points: &[EquityPoint]) -> Vec<f64> {
    let mut closes: Vec<Decimal> = Vec::new();
    let mut day = None;
    for p in points {
        let d = p.time_ms.div_euclid(DAY_MS);
        if day == Some(d) {
            if let Some(last) = closes.last_mut() {
                *last = p.equity;
            }
        } else {
            closes.push(p.equity);
            day = Some(d);
        }
    }
    let mut prev = initial;
    closes
        .into_iter()
        .map(|c| {
            let r = if prev > Decimal::ZERO {
                f((c - prev) / prev)
            } else {
                0.0
            };
            prev = c;
            r
        })
        .collect()
}

/// Annualized Sharpe ratio of daily returns (sample standard deviation, risk-free rate 0).
pub fn sharpe(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (var > 0.0).then(|| mean / var.sqrt() * 365f64.sqrt())
}

/// Annualized Sortino ratio: mean over the downside deviation `√(Σ min(r, 0)² / n)`.
pub fn sortino(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let down = returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n;
    (down > 0.0).then(|| mean / down.sqrt() * 365f64.sqrt())
}

/// All metrics of an outcome.
pub fn compute_metrics(o: &BacktestOutcome) -> Metrics {
    let trades = &o.trades;
    let wins: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.net_pnl > Decimal::ZERO)
        .collect();
    let losses: Vec<&Trade> = trades
        .iter()
        .filter(|t| t.net_pnl <= Decimal::ZERO)
        .collect();
    let sum_win: Decimal = wins.iter().map(|t| t.net_pnl).sum();
    let sum_loss: Decimal = -losses.iter().map(|t| t.net_pnl).sum::<Decimal>();
    let mean = |sum: Decimal, n: usize| {
        if n == 0 {
            Decimal::ZERO
        } else {
            (sum / Decimal::from(n)).round_dp(8)
        }
    };
    let final_equity = o
        .equity
        .last()
        .map(|p| p.equity)
        .unwrap_or(o.initial_equity);
    let eq: Vec<Decimal> = std::iter::once(o.initial_equity)
        .chain(o.equity.iter().map(|p| p.equity))
        .collect();
    let (dd, dd_pct) = max_drawdown(&eq);
    let returns = daily_returns(o.initial_equity, &o.equity);
    let days = match (o.equity.first(), o.equity.last()) {
        (Some(a), Some(b)) => ((b.time_ms - a.time_ms + 1) as f64 / DAY_MS as f64).max(1e-9),
        _ => 0.0,
    };
    let exposed = o
        .equity
        .iter()
        .filter(|p| p.exposure > Decimal::ZERO)
        .count();
    let side_stats = |side: PositionSide| {
        let v: Vec<&Trade> = trades.iter().filter(|t| t.side == side).collect();
        (v.len() as u64, v.iter().map(|t| t.net_pnl).sum::<Decimal>())
    };
    let (long_trades, long_pnl) = side_stats(PositionSide::Long);
    let (short_trades, short_pnl) = side_stats(PositionSide::Short);
    let n = trades.len();
    Metrics {
        initial_equity: o.initial_equity,
        final_equity,
        net_pnl: final_equity - o.initial_equity,
        total_fees: trades.iter().map(|t| t.fees).sum(),
        total_funding: trades.iter().map(|t| t.funding).sum(),
        trades: n as u64,
        wins: wins.len() as u64,
        losses: losses.len() as u64,
        win_rate: if n == 0 {
            0.0
        } else {
            wins.len() as f64 / n as f64
        },
        profit_factor: (sum_loss > Decimal::ZERO).then(|| f(sum_win) / f(sum_loss)),
        avg_win: mean(sum_win, wins.len()),
        avg_loss: mean(sum_loss, losses.len()),
        max_drawdown: dd,
        max_drawdown_pct: dd_pct,
        sharpe: sharpe(&returns),
        sortino: sortino(&returns),
        exposure: if o.equity.is_empty() {
            0.0
        } else {
            exposed as f64 / o.equity.len() as f64
        },
        days,
        trades_per_day: if days > 0.0 { n as f64 / days } else { 0.0 },
        long_trades,
        short_trades,
        long_pnl,
        short_pnl,
        avg_notional: mean(trades.iter().map(|t| t.entry_price * t.qty).sum(), n),
        leverage: o.leverage,
        candles: o.candles,
        rejections: o.rejections.clone(),
        breaker_tripped_at: o.breaker_tripped_at,
    }
}

/// The trade list as CSV.
pub fn trades_csv(trades: &[Trade]) -> String {
    let mut s = String::from(
        "symbol,side,entry_time,exit_time,entry_price,exit_price,qty,gross_pnl,fees,net_pnl,legs_hit,exit_reason\n",
    );
    for t in trades {
        let side = match t.side {
            PositionSide::Long => "LONG",
            PositionSide::Short => "SHORT",
        };
        let _ = writeln!(
            s,
            "{},{side},{},{},{},{},{},{},{},{},{},{}",
            t.symbol,
            t.entry_time,
            t.exit_time,
            t.entry_price,
            t.exit_price,
            t.qty,
            t.gross_pnl.round_dp(8),
            t.fees.round_dp(8),
            t.net_pnl.round_dp(8),
            t.legs_hit,
            t.exit_reason.as_str()
        );
    }
    s
}

/// The equity curve as CSV.
pub fn equity_csv(points: &[EquityPoint]) -> String {
    let mut s = String::from("time_ms,equity,exposure\n");
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{}",
            p.time_ms,
            p.equity.round_dp(8),
            p.exposure.round_dp(8)
        );
    }
    s
}

/// The equity curve as an SVG document: the curve on a UTC time axis with its drawdown
/// underneath ([`crate::charts::equity_chart`], as in `report.html`), under `title`.
pub fn equity_svg(points: &[EquityPoint], title: &str) -> String {
    crate::charts::equity_chart(&[("strategy", points)], Some(title))
}

/// Paths of the files a report writes.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub trades_csv: PathBuf,
    pub equity_csv: PathBuf,
    pub metrics_json: PathBuf,
    pub equity_svg: PathBuf,
}

/// Writes `trades.csv`, `equity.csv`, `metrics.json` and `equity.svg` into `dir`.
pub fn write_report(
    dir: &Path,
    o: &BacktestOutcome,
    m: &Metrics,
    title: &str,
) -> Result<ReportFiles, BacktestError> {
    std::fs::create_dir_all(dir).map_err(|e| BacktestError::io(dir, e))?;
    let files = ReportFiles {
        trades_csv: dir.join("trades.csv"),
        equity_csv: dir.join("equity.csv"),
        metrics_json: dir.join("metrics.json"),
        equity_svg: dir.join("equity.svg"),
    };
    let json = serde_json::to_string_pretty(m).map_err(|e| BacktestError::Config(e.to_string()))?;
    let title = format!(
        "{title} — net PnL {} over {:.1} days, {} trades",
        m.net_pnl.round_dp(2),
        m.days,
        m.trades
    );
    for (path, body) in [
        (&files.trades_csv, trades_csv(&o.trades)),
        (&files.equity_csv, equity_csv(&o.equity)),
        (&files.metrics_json, json),
        (&files.equity_svg, equity_svg(&o.equity, &title)),
    ] {
        std::fs::write(path, body).map_err(|e| BacktestError::io(path, e))?;
    }
    Ok(files)
}

/// A few lines for people.
pub fn summary(m: &Metrics) -> String {
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}"));
    format!(
        "net PnL {} ({} → {}), fees {}, funding {}\n{} trades over {:.1} days ({:.2}/day), win rate {:.1}%, profit factor {}\n\
         avg win {} / avg loss {}, max drawdown {} ({:.2}%), Sharpe {}, Sortino {}\n\
         exposure {:.1}% of the time, long {} ({}) / short {} ({}), {} candles{}",
        m.net_pnl.round_dp(2),
        m.initial_equity.round_dp(2),
        m.final_equity.round_dp(2),
        m.total_fees.round_dp(2),
        m.total_funding.round_dp(2),
        m.trades,
        m.days,
        m.trades_per_day,
        m.win_rate * 100.0,
        opt(m.profit_factor),
        m.avg_win.round_dp(2),
        m.avg_loss.round_dp(2),
        m.max_drawdown.round_dp(2),
        m.max_drawdown_pct * 100.0,
        opt(m.sharpe),
        opt(m.sortino),
        m.exposure * 100.0,
        m.long_trades,
        m.long_pnl.round_dp(2),
        m.short_trades,
        m.short_pnl.round_dp(2),
        m.candles,
        if m.rejections.is_empty() {
            String::new()
        } else {
            format!(", refused entries {:?}", m.rejections)
        }
    ) + &m.breaker_tripped_at.map_or_else(String::new, |t| {
        format!(
            "\ndrawdown breaker tripped at {}: no entry after it",
            format_datetime(t)
        )
    })
}

/// The first and last trade times, for people.
pub fn span(trades: &[Trade]) -> Option<(String, String)> {
    Some((
        format_datetime(trades.first()?.entry_time),
        format_datetime(trades.last()?.exit_time),
    ))
}
