//! Pure portfolio arithmetic: trade statistics (win rate, profit factor), drawdown, Sharpe and
//! Sortino from equity snapshots, and a diversification score. No I/O, no clock.
//!
//! Money stays `Decimal`; ratios (win rate, profit factor, Sharpe, Sortino, drawdown fraction,
//! diversification) are `f64` because they are statistics, not amounts.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

pub use qt_events::api::{ClosedTrade, Drawdown, PnlBucket, TradeStats};

/// Win rate, profit factor, totals, drawdown of the cumulative PnL and per-trade Sharpe and
/// Sortino of `trades` in closing order (a trade with a net PnL of exactly zero is neither a win
/// nor a loss, but counts in `trades`).
pub fn trade_stats<'a>(trades: impl IntoIterator<Item = &'a ClosedTrade>) -> TradeStats {
    let mut s = TradeStats::default();
    let mut cumulative = vec![Decimal::ZERO];
    let mut pnls = Vec::new();
    for t in trades {
        s.trades += 1;
        s.net_pnl += t.net_pnl;
        cumulative.push(s.net_pnl);
        pnls.push(t.net_pnl.to_f64().unwrap_or(0.0));
        s.fees += t.fees;
        if t.net_pnl > Decimal::ZERO {
            s.wins += 1;
            s.gross_profit += t.net_pnl;
        } else if t.net_pnl < Decimal::ZERO {
            s.losses += 1;
            s.gross_loss -= t.net_pnl;
        }
    }
    if s.trades > 0 {
        s.win_rate = Some(f64::from(s.wins) / f64::from(s.trades));
    }
    if s.gross_loss > Decimal::ZERO {
        s.profit_factor = (s.gross_profit / s.gross_loss).to_f64();
    }
    s.total_pnl = s.net_pnl;
    s.max_drawdown = max_drawdown(&cumulative).amount;
    s.sharpe = sharpe(&pnls);
    s.sortino = sortino(&pnls);
    s
}

/// Trade statistics grouped by a key (symbol, model version).
pub fn stats_by<'a, F>(trades: &'a [ClosedTrade], key: F) -> BTreeMap<String, TradeStats>
where
    F: Fn(&'a ClosedTrade) -> &'a str,
{
    let mut groups: BTreeMap<String, Vec<&ClosedTrade>> = BTreeMap::new();
    for t in trades {
        groups.entry(key(t).to_owned()).or_default().push(t);
    }
    groups
        .into_iter()
        .map(|(k, ts)| (k, trade_stats(ts)))
        .collect()
}

/// Maximum drawdown of an equity series.
pub fn max_drawdown(equity: &[Decimal]) -> Drawdown {
    let mut best = Drawdown::default();
    let mut peak: Option<Decimal> = None;
    for &e in equity {
        let p = match peak {
            Some(p) if p >= e => p,
            _ => {
                peak = Some(e);
                e
            }
        };
        let dd = p - e;
        if dd > best.amount {
            best.amount = dd;
            best.fraction = if p > Decimal::ZERO {
                (dd / p).to_f64().unwrap_or(0.0)
            } else {
                0.0
            };
        }
    }
    best
}

/// Simple returns between consecutive equity snapshots (a snapshot after a non-positive equity
/// is skipped).
pub fn returns(equity: &[Decimal]) -> Vec<f64> {
    equity
        .windows(2)
        .filter(|w| w[0] > Decimal::ZERO)
        .filter_map(|w| ((w[1] - w[0]) / w[0]).to_f64())
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sharpe ratio per snapshot interval (not annualized): mean return / sample standard deviation.
/// `None` with fewer than two returns or no variation.
pub fn sharpe(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let m = mean(returns);
    let var = returns.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (returns.len() - 1) as f64;
    let sd = var.sqrt();
    (sd > 0.0).then(|| m / sd)
}

/// Sortino ratio per snapshot interval: mean return / downside deviation
/// `sqrt(mean(min(r, 0)^2))` over all returns. `None` with fewer than two returns or no loss.
pub fn sortino(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let m = mean(returns);
    let down = returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / returns.len() as f64;
    let dd = down.sqrt();
    (dd > 0.0).then(|| m / dd)
}

/// Diversification score in [0, 1): `1 - Σ wᵢ²` with `wᵢ` each position's share of the gross
/// exposure (0 with one position or none; `1 - 1/n` with n equal positions).
pub fn diversification(notionals: &[Decimal]) -> f64 {
    let gross: Decimal = notionals.iter().map(|n| n.abs()).sum();
    if gross <= Decimal::ZERO {
        return 0.0;
    }
    let hhi: Decimal = notionals
        .iter()
        .map(|n| {
            let w = n.abs() / gross;
            w * w
        })
        .sum();
    (Decimal::ONE - hhi).to_f64().unwrap_or(0.0)
}

/// Closed trades' net PnL by the UTC hour of the day and by the UTC weekday they closed in:
/// every hour (0–23) and every weekday (0 = Monday … 6 = Sunday) listed, empty ones at zero.
pub fn pnl_by_time(trades: &[ClosedTrade]) -> (Vec<PnlBucket>, Vec<PnlBucket>) {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let bucket = |b: u32, label: String| PnlBucket {
        bucket: b,
        label,
        trades: 0,
        net_pnl: Decimal::ZERO,
    };
    let mut hours: Vec<PnlBucket> = (0..24).map(|h| bucket(h, format!("{h:02}"))).collect();
    let mut days: Vec<PnlBucket> = (0..7u32)
        .map(|d| bucket(d, DAYS[d as usize].to_owned()))
        .collect();
    for t in trades {
        let secs = t.closed_at.div_euclid(1000);
        let hour = secs.rem_euclid(86_400) / 3600;
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let day = (secs.div_euclid(86_400) + 3).rem_euclid(7);
        for b in [&mut hours[hour as usize], &mut days[day as usize]] {
            b.trades += 1;
            b.net_pnl += t.net_pnl;
        }
    }
    (hours, days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn trade(sym: &str, model: &str, net: Decimal) -> ClosedTrade {
        ClosedTrade {
            position_id: format!("{sym}-{net}"),
            symbol: sym.into(),
            side: "LONG".into(),
            quantity: dec!(1),
            entry_price: dec!(100),
            exit_price: dec!(100),
            realized_pnl: net,
            fees: dec!(0),
            net_pnl: net,
            model_version: model.into(),
            opened_at: 0,
            closed_at: 1,
            reason: "stop".into(),
        }
    }

    #[test]
    fn win_rate_and_profit_factor_match_hand_computation() {
        let ts = [
            trade("BTCUSDT", "m1", dec!(30)),
            trade("BTCUSDT", "m1", dec!(-10)),
            trade("ETHUSDT", "m2", dec!(20)),
            trade("ETHUSDT", "m2", dec!(-15)),
            trade("ETHUSDT", "m2", dec!(0)),
        ];
        let s = trade_stats(&ts);
        assert_eq!((s.trades, s.wins, s.losses), (5, 2, 2));
        assert_eq!(s.win_rate, Some(0.4));
        assert_eq!(s.gross_profit, dec!(50));
        assert_eq!(s.gross_loss, dec!(25));
        assert_eq!(s.profit_factor, Some(2.0));
        assert_eq!(s.net_pnl, dec!(25));
        // Cumulative 0, 30, 20, 40, 25, 25: the largest fall is 40 -> 25.
        assert_eq!(s.max_drawdown, dec!(15));
        // PnLs 30, -10, 20, -15, 0: mean 5, sample variance (625+225+225+400+25)/4 = 375.
        assert!((s.sharpe.unwrap() - 5.0 / 375f64.sqrt()).abs() < 1e-12);
        // Downside: sqrt((100 + 225) / 5) = sqrt(65).
        assert!((s.sortino.unwrap() - 5.0 / 65f64.sqrt()).abs() < 1e-12);
        let by_model = stats_by(&ts, |t| &t.model_version);
        assert_eq!(by_model["m1"].profit_factor, Some(3.0));
        assert_eq!(by_model["m2"].win_rate, Some(1.0 / 3.0));
        let by_sym = stats_by(&ts, |t| &t.symbol);
        assert_eq!(by_sym["ETHUSDT"].net_pnl, dec!(5));
    }

    #[test]
    fn no_loss_means_no_profit_factor() {
        let s = trade_stats(&[trade("X", "m", dec!(1))]);
        assert_eq!(s.profit_factor, None);
        assert_eq!(trade_stats(&[]).win_rate, None);
    }

    #[test]
    fn max_drawdown_is_the_largest_fall_from_a_peak() {
        let eq = [
            dec!(100),
            dec!(120),
            dec!(90),
            dec!(130),
            dec!(104),
            dec!(140),
        ];
        let dd = max_drawdown(&eq);
        assert_eq!(dd.amount, dec!(30));
        assert!((dd.fraction - 0.25).abs() < 1e-12);
    }

    #[test]
    fn sharpe_and_sortino_match_hand_computation() {
        // Returns: +10%, -10%, +20%.
        let eq = [dec!(100), dec!(110), dec!(99), dec!(118.8)];
        let r = returns(&eq);
        assert_eq!(r.len(), 3);
        let m: f64 = (0.1 - 0.1 + 0.2) / 3.0;
        let sd = (((0.1 - m) * (0.1 - m) + (-0.1 - m) * (-0.1 - m) + (0.2 - m) * (0.2 - m)) / 2.0)
            .sqrt();
        let got = sharpe(&r).unwrap();
        assert!((got - m / sd).abs() < 1e-9, "{got}");
        let down = (0.01f64 / 3.0).sqrt();
        let got = sortino(&r).unwrap();
        assert!((got - m / down).abs() < 1e-9, "{got}");
        assert_eq!(sortino(&[0.1, 0.2]), None);
        assert_eq!(sharpe(&[0.1]), None);
    }

    #[test]
    fn diversification_is_one_minus_concentration() {
        assert_eq!(diversification(&[dec!(100)]), 0.0);
        assert!((diversification(&[dec!(100), dec!(-100)]) - 0.5).abs() < 1e-12);
        // Shares 0.5, 0.25, 0.25: 1 - (0.25 + 0.0625 + 0.0625) = 0.625.
        assert!((diversification(&[dec!(200), dec!(100), dec!(-100)]) - 0.625).abs() < 1e-12);
        assert_eq!(diversification(&[]), 0.0);
    }

    #[test]
    fn pnl_by_time_buckets_by_utc_hour_and_weekday() {
        let t = |closed_at: i64, net: i64| ClosedTrade {
            position_id: String::new(),
            symbol: "X".into(),
            side: "LONG".into(),
            quantity: Decimal::ONE,
            entry_price: Decimal::ONE,
            exit_price: Decimal::ONE,
            realized_pnl: Decimal::from(net),
            fees: Decimal::ZERO,
            net_pnl: Decimal::from(net),
            model_version: "v".into(),
            opened_at: 0,
            closed_at,
            reason: String::new(),
        };
        // 2026-01-02 is a Friday; 13:30 and 13:59 UTC, then Saturday 00:00 UTC.
        let fri = 1_767_312_000_000i64;
        let trades = [
            t(fri + 13 * 3_600_000 + 1_800_000, 5),
            t(fri + 13 * 3_600_000 + 3_540_000, -2),
            t(fri + 86_400_000, 7),
        ];
        let (hours, days) = pnl_by_time(&trades);
        assert_eq!(hours.len(), 24);
        assert_eq!((hours[13].trades, hours[13].net_pnl), (2, Decimal::from(3)));
        assert_eq!((hours[0].trades, hours[0].net_pnl), (1, Decimal::from(7)));
        assert_eq!(days[4].label, "Fri");
        assert_eq!((days[4].trades, days[4].net_pnl), (2, Decimal::from(3)));
        assert_eq!((days[5].label.as_str(), days[5].trades), ("Sat", 1));
        assert_eq!(days.iter().map(|d| d.trades).sum::<u32>(), 3);
    }
}
