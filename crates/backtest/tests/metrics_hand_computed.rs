//! Metrics and the goal check against values computed by hand on a tiny fixed series.

use qt_backtest::goal::assess;
use qt_backtest::report::{compute_metrics, daily_returns, equity_svg, max_drawdown, trades_csv};
use qt_backtest::{BacktestOutcome, EquityPoint, ExitReason, Trade};
use qt_events::PositionSide;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_006_400_000; // 2023-11-15 00:00 UTC

fn point(day: i64, hour: i64, equity: Decimal, exposure: Decimal) -> EquityPoint {
    EquityPoint {
        time_ms: T0 + day * DAY + hour * 3_600_000,
        equity,
        exposure,
    }
}

fn trade(side: PositionSide, net: Decimal) -> Trade {
    Trade {
        symbol: "BTCUSDT".into(),
        side,
        entry_time: T0,
        exit_time: T0 + 1,
        entry_price: dec!(100),
        exit_price: dec!(101),
        qty: dec!(10),
        gross_pnl: net + dec!(1),
        fees: dec!(1),
        funding: Decimal::ZERO,
        net_pnl: net,
        legs_hit: 1,
        exit_reason: ExitReason::TakeProfit,
        stop_price: dec!(98),
        targets: vec![dec!(101)],
    }
}

/// Equity 1000 → day ends 1100, 1045, 1149.5 (returns +10%, −5%, +10%); the last point of each
/// day counts. Trades +30, +20, −10.
fn outcome() -> BacktestOutcome {
    BacktestOutcome {
        trades: vec![
            trade(PositionSide::Long, dec!(30)),
            trade(PositionSide::Short, dec!(20)),
            trade(PositionSide::Long, dec!(-10)),
        ],
        equity: vec![
            point(0, 0, dec!(1000), dec!(0)),
            point(0, 23, dec!(1100), dec!(500)),
            point(1, 12, dec!(1000), dec!(500)),
            point(1, 23, dec!(1045), dec!(0)),
            point(2, 23, dec!(1149.5), dec!(0)),
        ],
        candles: 5,
        rejections: Default::default(),
        profiles: Default::default(),
        initial_equity: dec!(1000),
        leverage: 10,
        breaker_tripped_at: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-3
}

#[test]
fn trade_statistics_match_hand_computed_values() {
    let m = compute_metrics(&outcome());
    assert_eq!((m.trades, m.wins, m.losses), (3, 2, 1));
    assert!(close(m.win_rate, 2.0 / 3.0));
    assert_eq!(m.profit_factor, Some(5.0)); // 50 / 10
    assert_eq!((m.avg_win, m.avg_loss), (dec!(25), dec!(10)));
    assert_eq!((m.long_trades, m.short_trades), (2, 1));
    assert_eq!((m.long_pnl, m.short_pnl), (dec!(20), dec!(20)));
    assert_eq!(m.total_fees, dec!(3));
    assert_eq!(m.net_pnl, dec!(149.5));
    assert_eq!(m.avg_notional, dec!(1000));
}

#[test]
fn drawdown_sharpe_sortino_and_exposure_match_hand_computed_values() {
    let o = outcome();
    let m = compute_metrics(&o);
    // peak 1100 → trough 1000: 100, 9.0909%
    assert_eq!(m.max_drawdown, dec!(100));
    assert!(close(m.max_drawdown_pct, 100.0 / 1100.0));
    let r = daily_returns(o.initial_equity, &o.equity);
    assert_eq!(r.len(), 3);
    assert!(close(r[0], 0.10) && close(r[1], -0.05) && close(r[2], 0.10));
    // mean 0.05, sample sd √0.0075 = 0.0866025 → 0.57735 × √365 = 11.0303
    assert!(
        close(m.sharpe.unwrap_or_default(), 11.0303),
        "{:?}",
        m.sharpe
    );
    // downside √(0.0025 / 3) = 0.0288675 → 1.7320508 × √365 = 33.0909
    assert!(
        close(m.sortino.unwrap_or_default(), 33.0909),
        "{:?}",
        m.sortino
    );
    assert!(close(m.exposure, 0.4)); // 2 of 5 points held a position
    // 2 days 23 h + 1 ms
    assert!(close(m.days, (2.0 * 24.0 + 23.0) / 24.0));
    assert!(close(m.trades_per_day, 3.0 / m.days));
}

#[test]
fn max_drawdown_of_a_rising_curve_is_zero() {
    assert_eq!(max_drawdown(&[dec!(1), dec!(2), dec!(3)]), (dec!(0), 0.0));
}

#[test]
fn csv_and_svg_carry_every_trade_and_point() {
    let o = outcome();
    let csv = trades_csv(&o.trades);
    assert_eq!(csv.lines().count(), 4);
    assert!(
        csv.lines()
            .nth(2)
            .is_some_and(|l| l.starts_with("BTCUSDT,SHORT,") && l.ends_with(",1,take_profit"))
    );
    let svg = equity_svg(&o.equity, "t <1>");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("t &lt;1&gt;") && svg.contains("2023-11-15"));
    let polyline = svg
        .split("points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap_or_default();
    assert_eq!(polyline.split_whitespace().count(), 5);
}

#[test]
fn goal_check_extrapolates_expectancy_and_says_what_it_would_take() {
    let mut m = compute_metrics(&outcome());
    // win rate 0.5, +30 / −20 → expectancy 5; 12 trades a day
    m.win_rate = 0.5;
    m.avg_win = dec!(30);
    m.avg_loss = dec!(20);
    m.trades_per_day = 12.0;
    m.trades = 120;
    let a = assess(&m, dec!(1500), 24.0, 10);
    assert_eq!(a.expectancy, dec!(5));
    assert!(close(a.expected_trades, 12.0));
    assert_eq!(a.expected_pnl, dec!(60));
    assert!(!a.realistic);
    assert!(close(a.needed_trades_per_day.unwrap_or_default(), 300.0)); // 25× short
    assert!(close(a.needed_leverage.unwrap_or_default(), 250.0));
    assert!(close(a.needed_hours.unwrap_or_default(), 600.0));
    assert!(a.notes.iter().any(|n| n.contains("leverage cap")));
    let easy = assess(&m, dec!(50), 24.0, 10);
    assert!(easy.realistic);
    m.avg_loss = dec!(40); // expectancy −5
    let losing = assess(&m, dec!(50), 24.0, 10);
    assert!(!losing.realistic && losing.needed_hours.is_none());
}
