//! The same order protocol with PostgreSQL as the database (`QT_DATABASE_URL=postgres://…`):
//! a throw-away server is started when PostgreSQL is installed; otherwise the test says so and
//! skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_events::{ClosePosition, Event, Stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_orders_fills_positions_and_closed_trades_like_sqlite() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let mut fx = fixture().await;
    fx.db_url = pg.url();
    let ex = fx.execution(settings()).await;
    assert_eq!(ex.db.store.backend(), qt_store::Backend::Postgres);
    let mark = fx.mark().await;
    let intent = open_intent(&fx.bus, "intent-pg", "0.01", mark);
    let first = ex.handle_intent(&intent).await.unwrap();
    assert!(
        matches!(first[0].event, Event::OrderAccepted(_)),
        "{first:?}"
    );
    ex.poll_orders().await.unwrap();
    fx.wait_event(Stream::Positions, "PositionOpened", |e| {
        matches!(e, Event::PositionOpened(_))
    })
    .await;
    assert!(
        ex.reconcile().await.unwrap().is_empty(),
        "records match the exchange"
    );

    // A restart on Postgres finds the record and the risk book.
    let restarted = fx.execution(settings()).await;
    assert_eq!(
        restarted.handle_intent(&intent).await.unwrap()[0].id,
        first[0].id
    );
    assert_eq!(fx.all_orders().await.len(), 1);
    assert_eq!(
        restarted.book.lock().await.positions()[SYMBOL].qty,
        dec("0.01")
    );

    let close = fx.bus.envelope(Event::ClosePosition(ClosePosition {
        intent_id: "intent-pg-close".into(),
        symbol: SYMBOL.into(),
        reason: "manual".into(),
        position_side: None,
    }));
    restarted.handle_intent(&close).await.unwrap();
    restarted.poll_orders().await.unwrap();
    fx.wait_event(Stream::Positions, "PositionClosed", |e| {
        matches!(e, Event::PositionClosed(_))
    })
    .await;
    let trades = restarted.db.closed_trades().await.unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].2.as_deref(), Some("m-7"));
    fx.stop().await;
}
