//! Funding fees in the portfolio's figures, with a real Redis and a SQLite file: a
//! `FundingFeeCharged` counts once (through a consumer group, redelivered, republished under
//! another id, after a restart) in the day's realized PnL and daily PnL of the snapshot
//! execution reads, in the realized total, the wallet and equity, and per symbol and model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use portfolio_intelligence::{Intake, Settings};
use qt_bus::{Consumer, ConsumerConfig};
use qt_events::clock::Clock;
use qt_events::{
    Event, FundingFeeCharged, PositionClosed, PositionOpened, PositionSide, SignalRef, Stream,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;

const H: i64 = 3_600_000;

fn fee(symbol: &str, amount: Decimal, time: i64, tran: &str, pos: Option<&str>) -> Event {
    Event::FundingFeeCharged(FundingFeeCharged {
        symbol: symbol.into(),
        amount,
        asset: "USDT".into(),
        time,
        tran_id: tran.into(),
        position_id: pos.map(str::to_owned),
    })
}

fn signal() -> SignalRef {
    SignalRef {
        signal_id: "s-1".into(),
        model: "momentum".into(),
        model_version: "m-7".into(),
        confidence: 0.8,
        features: Default::default(),
        exits: None,
    }
}

#[tokio::test]
async fn funding_counts_once_in_the_days_realized_pnl_the_totals_and_per_symbol() {
    let f = common::fixture();
    let settings = Settings::default();
    let initial = settings.initial_balance;
    let sh = f.shared(settings.clone()).await;
    sh.apply(&f.envelope(Event::PositionOpened(PositionOpened {
        position_id: "btc-1".into(),
        symbol: "BTCUSDT".into(),
        side: PositionSide::Long,
        quantity: dec!(0.5),
        entry_price: dec!(40000),
        leverage: 5,
        intent_id: "i-1".into(),
        opened_at: common::DAY - 10 * H,
        signal: Some(signal()),
    })))
    .await
    .unwrap();

    // Yesterday 16:00: 0.5 × 40000 × 0.00005 = 1 paid. Today 08:00: 0.5 × 40000 × 0.0001 = 2
    // paid by the long, 0.3 earned by a short ETH position execution did not know.
    let yesterday = f.envelope(fee(
        "BTCUSDT",
        dec!(-1),
        common::DAY - 8 * H,
        "1",
        Some("btc-1"),
    ));
    let today = f.envelope(fee(
        "BTCUSDT",
        dec!(-2),
        common::DAY + 8 * H,
        "2",
        Some("btc-1"),
    ));
    let eth = f.envelope(fee("ETHUSDT", dec!(0.3), common::DAY + 8 * H, "3", None));

    // Through a consumer group, the today fee published twice and once more under another
    // envelope id (the same exchange transaction).
    f.bus
        .ensure_group(Stream::Positions, "portfolio-intelligence")
        .await
        .unwrap();
    let token = CancellationToken::new();
    let cfg = ConsumerConfig::new(Stream::Positions, "portfolio-intelligence", "pi-test");
    let task =
        tokio::spawn(Consumer::new(f.bus.clone(), cfg, Intake(sh.clone())).run(token.clone()));
    let again = f.envelope(today.event.clone());
    assert_ne!(again.id, today.id);
    for e in [&yesterday, &today, &today, &again, &eth] {
        f.bus.publish(e).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sh.state().book.funding.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "never consumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the duplicates behind them be handled too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    token.cancel();
    task.await.unwrap();
    sh.apply(&today).await.unwrap();

    let close = PositionClosed {
        position_id: "btc-1".into(),
        symbol: "BTCUSDT".into(),
        side: PositionSide::Long,
        max_quantity: dec!(0.5),
        entry_price: dec!(40000),
        exit_price: dec!(40100),
        realized_pnl: dec!(50),
        fees: dec!(4),
        net_pnl: dec!(46),
        opened_at: common::DAY - 10 * H,
        closed_at: common::DAY + 12 * H,
        reason: "take_profit".into(),
        signal: Some(signal()),
    };
    sh.apply(&f.envelope(Event::PositionClosed(close)))
        .await
        .unwrap();

    let check = |sh: &portfolio_intelligence::Shared| {
        let now = f.clock.now_ms();
        let s = sh.state().book.snapshot(now);
        // Today: 46 − 2 + 0.3; yesterday's fee is not today's.
        assert_eq!(s.realized_pnl_today, dec!(44.3));
        assert_eq!(s.daily_pnl, dec!(44.3));
        // No sync yet: the wallet is the initial balance and every fact, funding included.
        assert_eq!(
            s.wallet_balance,
            initial + dec!(46) - dec!(1) - dec!(2) + dec!(0.3)
        );
        assert_eq!(s.equity, s.wallet_balance);
        let r = sh.state().book.report(now);
        assert_eq!(r.realized_pnl_total, dec!(43.3));
        assert_eq!(r.funding_total, dec!(-2.7));
        assert_eq!(r.totals.net_pnl, dec!(46));
        assert_eq!(r.totals.funding, dec!(-2.7));
        assert_eq!(r.totals.total_pnl, dec!(43.3));
        let btc = &r.by_symbol["BTCUSDT"];
        assert_eq!((btc.funding, btc.total_pnl), (dec!(-3), dec!(43)));
        let eth = &r.by_symbol["ETHUSDT"];
        assert_eq!(
            (eth.trades, eth.funding, eth.total_pnl),
            (0, dec!(0.3), dec!(0.3))
        );
        assert_eq!(r.by_model_version["m-7"].funding, dec!(-3));
        assert_eq!(r.by_model_version["unknown"].funding, dec!(0.3));
    };
    check(&sh);
    let published = sh.snapshot().await.unwrap();
    assert_eq!(published.realized_pnl_today, dec!(44.3));

    // A restart reads the fees back; a late redelivery still counts nothing.
    drop(sh);
    let sh = f.shared(settings).await;
    assert_eq!(sh.state().book.funding.len(), 3);
    sh.apply(&today).await.unwrap();
    sh.apply(&eth).await.unwrap();
    check(&sh);
}
