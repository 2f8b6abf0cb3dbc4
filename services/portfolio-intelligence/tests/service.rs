//! The service against the real simulator over HTTP, a real Redis and a SQLite file: the sync
//! reads balances and positions, a position opened on the exchange behind the system's back is
//! detected as drift (after the configured confirmations) and alerted, snapshots are stored and
//! published to `qt:portfolio`, a restart restores the state, and events reach the book through
//! a real consumer group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use portfolio_intelligence::{Db, Intake, Intel, Settings};
use qt_bus::{Consumer, ConsumerConfig};
use qt_events::clock::Clock;
use qt_events::{Event, PositionClosed, PositionOpened, PositionSide, Side, Stream};
use qt_exchange::{Exchange, NewOrder};
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;

const SYMBOL: &str = common::SYMBOL;

fn opened(qty: rust_decimal::Decimal, entry: rust_decimal::Decimal) -> PositionOpened {
    PositionOpened {
        position_id: "btc-1".into(),
        symbol: SYMBOL.into(),
        side: PositionSide::Long,
        quantity: qty,
        entry_price: entry,
        leverage: 5,
        intent_id: "i-1".into(),
        opened_at: common::DAY,
        signal: None,
    }
}

#[tokio::test]
async fn position_changed_behind_the_systems_back_is_detected_and_alerted() {
    let f = common::fixture();
    let (client, _base, sim) = common::sim().await;
    let sh = f.shared(Settings::default()).await;
    let intel = Intel::new(sh.clone(), client.clone());

    assert!(intel.sync().await.unwrap().is_empty());
    let snap = sh.snapshot().await.unwrap();
    assert_eq!(
        snap.wallet_balance,
        dec!(5000),
        "the wallet comes from the exchange"
    );
    assert_eq!(snap.open_positions, 0);

    // Someone buys on the exchange; no service knows.
    client
        .new_order(&NewOrder::market(
            SYMBOL,
            Side::Buy,
            dec!(0.01),
            "behind-the-back-1",
        ))
        .await
        .unwrap();
    assert!(
        intel.sync().await.unwrap().is_empty(),
        "one sync is not enough (a fill may be on its way)"
    );
    let drift = intel.sync().await.unwrap();
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0].symbol, SYMBOL);
    assert_eq!(
        (drift[0].believed, drift[0].exchange),
        (dec!(0), dec!(0.01))
    );
    let raised = sh.evaluate_alerts().await.unwrap();
    assert!(
        raised
            .iter()
            .any(|a| a.rule == "position_drift" && a.key == SYMBOL)
    );
    let alerts = f.events(Stream::Alerts).await;
    assert!(
        alerts
            .iter()
            .any(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "position_drift"))
    );

    // The services learn about it: the drift is gone at the next sync.
    let entry = client.positions(Some(SYMBOL)).await.unwrap()[0].entry_price;
    sh.apply(&f.envelope(Event::PositionOpened(opened(dec!(0.01), entry))))
        .await
        .unwrap();
    assert!(intel.sync().await.unwrap().is_empty());
    assert!(sh.state().confirmed_drift.is_empty());
    let snap = sh.snapshot().await.unwrap();
    assert_eq!(snap.open_positions, 1);
    assert_eq!(
        snap.long_exposure,
        dec!(0.01) * sh.state().book.marks[SYMBOL]
    );
    drop(sim);
}

#[tokio::test]
async fn snapshots_are_stored_published_and_restored_after_a_restart() {
    let f = common::fixture();
    let sh = f.shared(Settings::default()).await;
    sh.apply(&f.envelope(Event::PositionOpened(opened(dec!(0.5), dec!(40000)))))
        .await
        .unwrap();
    let s1 = sh.snapshot().await.unwrap();
    f.clock.advance(10_000);
    let closed = PositionClosed {
        position_id: "btc-1".into(),
        symbol: SYMBOL.into(),
        side: PositionSide::Long,
        max_quantity: dec!(0.5),
        entry_price: dec!(40000),
        exit_price: dec!(40100),
        realized_pnl: dec!(50),
        fees: dec!(4),
        net_pnl: dec!(46),
        opened_at: common::DAY,
        closed_at: common::DAY + 12 * 3_600_000 + 5_000,
        reason: "take_profit".into(),
        signal: None,
    };
    let env = f.envelope(Event::PositionClosed(closed));
    sh.apply(&env).await.unwrap();
    sh.apply(&env).await.unwrap();
    let s2 = sh.snapshot().await.unwrap();
    assert_eq!(
        s2.realized_pnl_today,
        dec!(46),
        "a redelivered close counts once"
    );
    assert_eq!(s2.equity, s1.equity + dec!(46));

    let published: Vec<_> = f
        .events(Stream::Portfolio)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::PortfolioSnapshot(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(published, vec![s1.clone(), s2.clone()]);
    let db = Db::open(&f.db_url).await.unwrap();
    assert_eq!(db.snapshot_count().await.unwrap(), 2);

    // A restart: trades, equity curve and (no) open positions come back from the database.
    drop(sh);
    let sh = f.shared(Settings::default()).await;
    let r = sh.state().book.report(f.clock.now_ms());
    assert_eq!(r.totals.trades, 1);
    assert_eq!(r.realized_pnl_total, dec!(46));
    assert_eq!(r.equity_curve.len(), 2);
    assert!(r.positions.is_empty());
}

#[tokio::test]
async fn open_positions_survive_a_restart() {
    let f = common::fixture();
    let sh = f.shared(Settings::default()).await;
    sh.apply(&f.envelope(Event::PositionOpened(opened(dec!(0.5), dec!(40000)))))
        .await
        .unwrap();
    drop(sh);
    let sh = f.shared(Settings::default()).await;
    assert_eq!(sh.state().book.positions[SYMBOL].quantity, dec!(0.5));
}

#[tokio::test]
async fn events_reach_the_book_through_a_consumer_group() {
    let f = common::fixture();
    let sh = f.shared(Settings::default()).await;
    let cfg = ConsumerConfig::new(Stream::Positions, "portfolio-intelligence", "pi-test");
    f.bus
        .ensure_group(Stream::Positions, "portfolio-intelligence")
        .await
        .unwrap();
    let token = CancellationToken::new();
    let task =
        tokio::spawn(Consumer::new(f.bus.clone(), cfg, Intake(sh.clone())).run(token.clone()));
    f.bus
        .publish(&f.envelope(Event::PositionOpened(opened(dec!(0.25), dec!(40000)))))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sh.state().book.positions.contains_key(SYMBOL) {
        assert!(tokio::time::Instant::now() < deadline, "never consumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sh.state().book.positions[SYMBOL].quantity, dec!(0.25));
    token.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn the_kill_switch_setting_is_read_back_from_the_control_stream_at_start() {
    let f = common::fixture();
    for enabled in [true, false, true] {
        let cmd = qt_events::SetKillSwitch {
            command_id: format!("k-{enabled}"),
            enabled,
            reason: "test".into(),
            requested_by: "test".into(),
        };
        f.bus
            .publish(&f.envelope(Event::SetKillSwitch(cmd)))
            .await
            .unwrap();
    }
    let sh = f.shared(Settings::default()).await;
    assert_eq!(sh.state().kill_switch, None);
    sh.restore_control().await.unwrap();
    assert_eq!(sh.state().kill_switch, Some(true));
}

#[tokio::test]
async fn the_drawdown_breaker_is_read_back_from_the_control_and_alert_streams_at_start() {
    let f = common::fixture();
    let trip = || {
        Event::AlertRaised(qt_events::AlertRaised {
            rule: qt_events::alert_rules::DRAWDOWN_BREAKER_TRIPPED.into(),
            key: String::new(),
            severity: qt_events::Severity::Critical,
            message: "drawdown breaker tripped".into(),
            service: "execution".into(),
            details: Default::default(),
        })
    };
    f.bus.publish(&f.envelope(trip())).await.unwrap();
    let sh = f.shared(Settings::default()).await;
    assert_eq!(sh.state().drawdown_breaker, None);
    sh.restore_control().await.unwrap();
    assert!(sh.state().drawdown_breaker.as_ref().unwrap().tripped);

    // A resume published later wins over the earlier trip.
    f.clock.advance(1_000);
    let resume = qt_events::ResumeTrading {
        command_id: "r-1".into(),
        reason: "reviewed".into(),
        requested_by: "test".into(),
    };
    f.bus
        .publish(&f.envelope(Event::ResumeTrading(resume)))
        .await
        .unwrap();
    let sh = f.shared(Settings::default()).await;
    sh.restore_control().await.unwrap();
    let b = sh.state().drawdown_breaker.clone().unwrap();
    assert!(!b.tripped);
    assert!(b.message.contains("reviewed"), "{}", b.message);

    // And a later trip wins over that resume.
    f.clock.advance(1_000);
    f.bus.publish(&f.envelope(trip())).await.unwrap();
    let sh = f.shared(Settings::default()).await;
    sh.restore_control().await.unwrap();
    assert!(sh.state().drawdown_breaker.as_ref().unwrap().tripped);
}

#[tokio::test]
async fn stored_snapshots_leave_out_the_curve_and_old_ones_are_pruned() {
    let f = common::fixture();
    let settings = Settings {
        snapshot_retention: Duration::from_secs(60),
        ..Settings::default()
    };
    let sh = f.shared(settings).await;
    for _ in 0..5 {
        sh.snapshot().await.unwrap();
        f.clock.advance(20_000);
    }
    let db = Db::open(&f.db_url).await.unwrap();
    // Taken at 0, 20, 40, 60, 80 s; the last at 80 s keeps those from 20 s on.
    assert_eq!(db.snapshot_count().await.unwrap(), 4);
    let row = sqlx::query("SELECT report FROM pi_snapshots ORDER BY ts DESC LIMIT 1")
        .fetch_one(db.store().pool())
        .await
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&sqlx::Row::try_get::<String, _>(&row, "report").unwrap()).unwrap();
    assert!(report.get("equity_curve").is_none());
    assert!(report.get("totals").is_some());
}
