//! The portfolio's figures on a fixed sequence of fills and prices, checked against values
//! computed by hand (in the comments).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use portfolio_intelligence::book::{Book, ExchangePosition, ExchangeView};
use qt_events::{MarkPriceUpdated, PositionClosed, PositionOpened, PositionSide, SignalRef};
use qt_testkit::build;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// 2026-01-02 00:00:00 UTC.
const DAY: i64 = 1_767_312_000_000;
const H: i64 = 3_600_000;

fn signal(v: &str) -> Option<SignalRef> {
    Some(SignalRef {
        signal_id: format!("sig-{v}"),
        model: "gbdt".into(),
        model_version: v.into(),
        confidence: 0.7,
        features: BTreeMap::new(),
        exits: None,
    })
}

fn opened(sym: &str, side: PositionSide, qty: Decimal, entry: Decimal, v: &str) -> PositionOpened {
    PositionOpened {
        signal: signal(v),
        ..build::opened(sym, side, qty, entry, DAY)
    }
}

#[allow(clippy::too_many_arguments)]
fn closed(
    sym: &str,
    side: PositionSide,
    qty: Decimal,
    entry: Decimal,
    exit: Decimal,
    realized: Decimal,
    fees: Decimal,
    at: i64,
    sig: Option<SignalRef>,
) -> PositionClosed {
    let opened = build::opened(sym, side, qty, entry, at - H);
    PositionClosed {
        realized_pnl: realized,
        net_pnl: realized - fees,
        signal: sig,
        ..build::closed(&opened, exit, fees, at, "take_profit")
    }
}

fn mark(sym: &str, p: Decimal) -> MarkPriceUpdated {
    build::mark(sym, p, DAY)
}

#[test]
fn fixed_sequence_of_fills_and_prices_gives_the_hand_computed_figures() {
    let mut b = Book::new(dec!(10000), 100);
    // Yesterday: SOL closed at a net loss of 5 (no signal: model "unknown").
    let sol = closed(
        "SOLUSDT",
        PositionSide::Long,
        dec!(10),
        dec!(100),
        dec!(99.6),
        dec!(-4),
        dec!(1),
        DAY - H,
        None,
    );
    assert!(b.on_closed(&sol).is_some());
    assert!(
        b.on_closed(&sol).is_none(),
        "a redelivered close counts once"
    );
    let mut late = opened("SOLUSDT", PositionSide::Long, dec!(10), dec!(100), "v0");
    late.position_id = sol.position_id.clone();
    b.on_opened(&late);
    assert!(
        b.positions.is_empty(),
        "a late redelivered open does not revive a closed position"
    );
    let s0 = b.record(DAY);
    assert_eq!(s0.equity, dec!(9995));
    assert_eq!(
        s0.realized_pnl_today,
        dec!(0),
        "yesterday's trade is not today's"
    );

    b.on_opened(&opened(
        "BTCUSDT",
        PositionSide::Long,
        dec!(0.5),
        dec!(40000),
        "v1",
    ));
    b.on_opened(&opened(
        "ETHUSDT",
        PositionSide::Short,
        dec!(4),
        dec!(2000),
        "v2",
    ));
    b.on_mark(&mark("BTCUSDT", dec!(41000)));
    b.on_mark(&mark("ETHUSDT", dec!(1950)));
    // BTC (41000-40000)*0.5 = 500; ETH (1950-2000)*-4 = 200.
    let s1 = b.record(DAY + H / 2);
    assert_eq!(s1.unrealized_pnl, dec!(700));
    assert_eq!(s1.equity, dec!(10695));
    assert_eq!(s1.long_exposure, dec!(20500));
    assert_eq!(s1.short_exposure, dec!(7800));
    assert_eq!(s1.gross_exposure, dec!(28300));
    assert_eq!(s1.net_exposure, dec!(12700));
    assert_eq!(s1.open_positions, 2);
    assert_eq!(s1.daily_pnl, dec!(700));
    let r1 = b.report(DAY + H / 2);
    // 1 - (w1² + w2²) = 2·20500·7800 / 28300².
    assert!((r1.diversification - 2.0 * 20500.0 * 7800.0 / (28300.0f64 * 28300.0)).abs() < 1e-9);
    assert!((r1.long_share - 20500.0 / 28300.0).abs() < 1e-9);
    let btc = r1
        .positions
        .iter()
        .find(|p| p.position.symbol == "BTCUSDT")
        .unwrap();
    assert_eq!(btc.unrealized_pnl, dec!(500));
    assert!((btc.unrealized_pct - 0.025).abs() < 1e-12);

    // ETH closed at 1900: realized 400, fees 6, net 394.
    b.on_closed(&closed(
        "ETHUSDT",
        PositionSide::Short,
        dec!(4),
        dec!(2000),
        dec!(1900),
        dec!(400),
        dec!(6),
        DAY + H,
        signal("v2"),
    ));
    b.on_mark(&mark("BTCUSDT", dec!(39000)));
    let s2 = b.record(DAY + 2 * H);
    // Wallet 10000 - 5 + 394 = 10389; BTC unrealized -500.
    assert_eq!(s2.wallet_balance, dec!(10389));
    assert_eq!(s2.unrealized_pnl, dec!(-500));
    assert_eq!(s2.equity, dec!(9889));
    assert_eq!(s2.realized_pnl_today, dec!(394));
    assert_eq!(s2.daily_pnl, dec!(-106));
    assert_eq!(
        (s2.gross_exposure, s2.net_exposure),
        (dec!(19500), dec!(19500))
    );

    // BTC closed at 39000: realized -500, fees 10, net -510.
    b.on_closed(&closed(
        "BTCUSDT",
        PositionSide::Long,
        dec!(0.5),
        dec!(40000),
        dec!(39000),
        dec!(-500),
        dec!(10),
        DAY + 3 * H,
        signal("v1"),
    ));
    let s3 = b.record(DAY + 3 * H);
    assert_eq!(s3.equity, dec!(9879));
    assert_eq!(s3.open_positions, 0);
    assert_eq!(s3.realized_pnl_today, dec!(-116));

    let r = b.report(DAY + 3 * H);
    // Trades: -5, +394, -510.
    assert_eq!((r.totals.trades, r.totals.wins, r.totals.losses), (3, 1, 2));
    assert!((r.totals.win_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(r.totals.gross_profit, dec!(394));
    assert_eq!(r.totals.gross_loss, dec!(515));
    assert!((r.totals.profit_factor.unwrap() - 394.0 / 515.0).abs() < 1e-12);
    assert_eq!(r.realized_pnl_total, dec!(-121));
    assert_eq!(r.by_symbol["ETHUSDT"].net_pnl, dec!(394));
    assert_eq!(r.by_model_version["v1"].net_pnl, dec!(-510));
    assert_eq!(r.by_model_version["v2"].win_rate, Some(1.0));
    assert_eq!(r.by_model_version["unknown"].net_pnl, dec!(-5));
    // Per-trade figures of the whole book: cumulative 0, -5, 389, -121 -> drawdown 510.
    assert_eq!(r.totals.max_drawdown, dec!(510));
    assert_eq!(r.by_model_version["v1"].max_drawdown, dec!(510));
    assert_eq!(r.by_symbol["ETHUSDT"].max_drawdown, dec!(0));
    // Curve 9995, 10695, 9889, 9879: drawdown 10695 - 9879 = 816.
    assert_eq!(r.max_drawdown.amount, dec!(816));
    assert!((r.max_drawdown.fraction - 816.0 / 10695.0).abs() < 1e-12);
    let rets = [700.0 / 9995.0, -806.0 / 10695.0, -10.0 / 9889.0];
    let m = rets.iter().sum::<f64>() / 3.0;
    let sd = (rets.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 2.0).sqrt();
    let down = (rets.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / 3.0).sqrt();
    assert!((r.sharpe.unwrap() - m / sd).abs() < 1e-9);
    assert!((r.sortino.unwrap() - m / down).abs() < 1e-9);
}

#[test]
fn drift_is_the_difference_between_exchange_and_belief() {
    let mut b = Book::new(dec!(1000), 10);
    assert!(b.drift().is_empty(), "no drift before the first sync");
    b.on_opened(&opened(
        "BTCUSDT",
        PositionSide::Long,
        dec!(0.5),
        dec!(40000),
        "v1",
    ));
    b.on_opened(&opened(
        "XRPUSDT",
        PositionSide::Long,
        dec!(100),
        dec!(1),
        "v1",
    ));
    let pos = |s: &str, a: Decimal| ExchangePosition {
        symbol: s.into(),
        amount: a,
        entry_price: dec!(1),
        mark_price: dec!(2),
        unrealized_pnl: dec!(0),
    };
    let mut positions = BTreeMap::new();
    positions.insert("BTCUSDT".into(), pos("BTCUSDT", dec!(0.5)));
    positions.insert("ETHUSDT".into(), pos("ETHUSDT", dec!(-4)));
    b.on_sync(ExchangeView {
        synced_at: DAY,
        wallet_balance: dec!(1234),
        available_balance: dec!(1000),
        positions,
    });
    let d = b.drift();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].symbol.as_str(), d[0].believed, d[0].exchange),
        ("ETHUSDT", dec!(0), dec!(-4))
    );
    assert_eq!(
        (d[1].symbol.as_str(), d[1].believed, d[1].exchange),
        ("XRPUSDT", dec!(100), dec!(0))
    );
    assert_eq!(
        b.snapshot(DAY).wallet_balance,
        dec!(1234),
        "the exchange's wallet wins after a sync"
    );
}
