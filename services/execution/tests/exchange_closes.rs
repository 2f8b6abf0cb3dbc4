//! What the exchange does on its own — a liquidation (`autoclose-…`), an auto-deleveraging
//! (`adl_autoclose`), a settlement (`settlement_autoclose-…`) — arrives on the user data stream
//! as fills of orders execution never sent. Against the real simulator (which produces all
//! three), a real Redis and a real SQLite file: the fill is stored, the position closes with
//! the exchange's reason, its orphaned protection is cancelled and an alert is raised.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_events::{Event, Severity, Stream};
use qt_exchange::Exchange;

/// Opens 0.01 long through an intent, protects it with a stop at `stop_at` times the mark and
/// two take-profits, and checks that the exchange holds the three conditional orders.
async fn open_protected(fx: &Fixture, ex: &Ex, id: &str, stop_at: &str) {
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, id, "0.01", mark))
        .await
        .unwrap();
    fx.wait_event(Stream::Positions, "PositionOpened", |e| {
        matches!(e, Event::PositionOpened(_))
    })
    .await;
    let mut protect = protect_intent(&fx.bus, &format!("{id}-protect"), mark, 2);
    if let Event::ProtectPosition(p) = &mut protect.event
        && let Some(stop) = p.stop.as_mut()
    {
        stop.trigger_price = (mark * dec(stop_at)).round_dp(1);
    }
    ex.handle_intent(&protect).await.unwrap();
    let algos = fx.client.open_algo_orders(Some(SYMBOL)).await.unwrap();
    assert_eq!(algos.len(), 3, "stop and two take-profits: {algos:?}");
}

/// Waits until the simulator holds no open conditional order of the symbol.
async fn wait_no_open_algos(fx: &Fixture) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let algos = fx.client.open_algo_orders(Some(SYMBOL)).await.unwrap();
        if algos.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "protection left on the exchange: {algos:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one exchange-initiated close of kind `trigger` and checks what execution made of it.
async fn exchange_close_is_handled(
    fx: &Fixture,
    ex: &Ex,
    reason: &str,
    rule: &str,
    severity: Severity,
    trigger: impl std::future::Future<Output = ()>,
) {
    trigger.await;
    let closed = fx
        .wait_event(Stream::Positions, "PositionClosed", |e| {
            matches!(e, Event::PositionClosed(_))
        })
        .await;
    let Event::PositionClosed(c) = &closed.event else {
        unreachable!()
    };
    assert_eq!(c.reason, reason, "{c:?}");
    let alert = fx
        .wait_event(
            Stream::Alerts,
            rule,
            |e| matches!(e, Event::AlertRaised(a) if a.rule == rule),
        )
        .await;
    let Event::AlertRaised(a) = &alert.event else {
        unreachable!()
    };
    assert_eq!(a.severity, severity);
    assert_eq!(a.key, SYMBOL);
    assert!(
        a.message.contains("the position is closed"),
        "{}",
        a.message
    );
    // The protection the position had is cancelled on the exchange and in the records.
    wait_no_open_algos(fx).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !ex.db.live_orders().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "live records left: {:?}",
            ex.db.live_orders().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both fills stored locally (the entry and the exchange's close); the book is flat.
    assert_eq!(ex.db.fill_count().await.unwrap(), 2);
    assert!(ex.book.lock().await.positions().is_empty());
    assert!(ex.db.open_positions().await.unwrap().is_empty());
    assert!(fx.position_amt().await.is_zero());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adl_close_stores_the_fill_closes_the_position_cancels_its_protection_and_alerts() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(Duration::from_millis(300)).await;
    open_protected(&fx, &ex, "intent-adl", "0.97").await;
    exchange_close_is_handled(
        &fx,
        &ex,
        "adl",
        "position_auto_deleveraged",
        Severity::Warning,
        async {
            fx.control(&format!("/sim/autoclose?symbol={SYMBOL}&kind=adl"), None)
                .await;
        },
    )
    .await;
    // The exchange's order is recorded under its own client id.
    let fills = fx.all_orders().await;
    assert!(
        fills
            .iter()
            .any(|o| o["clientOrderId"].as_str() == Some("adl_autoclose")),
        "{fills:?}"
    );
    stream.cancel();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_close_is_handled_like_an_adl_with_its_own_reason() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(Duration::from_millis(300)).await;
    open_protected(&fx, &ex, "intent-settle", "0.97").await;
    exchange_close_is_handled(
        &fx,
        &ex,
        "settlement",
        "position_settled",
        Severity::Warning,
        async {
            fx.control(
                &format!("/sim/autoclose?symbol={SYMBOL}&kind=settlement"),
                None,
            )
            .await;
        },
    )
    .await;
    stream.cancel();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liquidation_closes_the_position_as_liquidation_with_a_critical_alert() {
    // A small wallet, so a fall of the mark liquidates 0.01 BTC.
    let fx = fixture_with(|b| b.setting("initial_balance = \"150\"")).await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The stop far under the price: the margin check runs after the stops on a new mark, and
    // this one is not reached by the fall that liquidates.
    open_protected(&fx, &ex, "intent-liq", "0.1").await;
    let mark = fx.mark().await;
    exchange_close_is_handled(
        &fx,
        &ex,
        "liquidation",
        "position_liquidated",
        Severity::Critical,
        fx.set_mark((mark * dec("0.2")).round_dp(1)),
    )
    .await;
    let orders = fx.all_orders().await;
    assert!(
        orders.iter().any(|o| o["clientOrderId"]
            .as_str()
            .is_some_and(|c| c.starts_with("autoclose-"))),
        "{orders:?}"
    );
    stream.cancel();
    fx.stop().await;
}
