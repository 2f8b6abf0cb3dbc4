//! Funding fees against the real simulator, a real Redis and a real SQLite file: a position
//! held across a funding time gets its fee published once as `FundingFeeCharged` (from the
//! stream's `FUNDING_FEE` update, or from reconciliation when the update was missed) and
//! counted in the risk book's realized PnL of the day; re-reading and restarting add nothing,
//! on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use execution::funding::funding_event_id;
use qt_events::{Event, FundingFeeCharged, Stream};

async fn funding_facts(fx: &Fixture) -> Vec<(String, FundingFeeCharged)> {
    fx.events(Stream::Positions)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::FundingFeeCharged(f) => Some((e.id, f)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_is_published_once_and_counted_in_the_days_realized_pnl() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-funded", "0.01", mark))
        .await
        .unwrap();
    let opened = fx
        .wait_event(Stream::Positions, "PositionOpened", |e| {
            matches!(e, Event::PositionOpened(_))
        })
        .await;
    let Event::PositionOpened(o) = &opened.event else {
        unreachable!()
    };
    let realized_before = ex.book.lock().await.realized_today;

    // The repo's candles: 14:15 UTC after the warmup; the 15:55 candle closes at 29274.28 at
    // 16:00, a funding time, at the default 0.0001: the long pays
    // 0.01 × 29274.28 × 0.0001 = 0.029274280.
    fx.control("/sim/step?candles=21", None).await;
    let ev = fx
        .wait_event(Stream::Positions, "FundingFeeCharged", |e| {
            matches!(e, Event::FundingFeeCharged(_))
        })
        .await;
    let Event::FundingFeeCharged(f) = &ev.event else {
        unreachable!()
    };
    assert_eq!(f.amount, dec("-0.02927428"));
    assert_eq!(f.symbol, SYMBOL);
    assert_eq!(f.asset, "USDT");
    assert_eq!(f.position_id.as_deref(), Some(o.position_id.as_str()));
    assert_eq!(ev.id, funding_event_id(SYMBOL, &f.tran_id));
    assert_eq!(
        ex.book.lock().await.realized_today,
        realized_before - dec("0.02927428")
    );

    // Read again, by the periodic pass and by a restarted execution: nothing new.
    assert_eq!(ex.sync_funding().await.unwrap(), 0);
    ex.reconcile().await.unwrap();
    stream.cancel();
    let again = fx.execution(settings()).await;
    assert_eq!(again.sync_funding().await.unwrap(), 0);
    assert_eq!(
        again.book.lock().await.realized_today,
        realized_before - dec("0.02927428")
    );
    assert_eq!(funding_facts(&fx).await.len(), 1);

    // With no one on the user stream the next fee (00:00, the 23:55 candle's close 29113.99:
    // 0.01 × 29113.99 × 0.0001 = 0.029113990) is found by the reconciliation.
    fx.control("/sim/step?candles=96", None).await;
    again.reconcile().await.unwrap();
    let facts = funding_facts(&fx).await;
    let amounts: Vec<_> = facts.iter().map(|(_, f)| f.amount).collect();
    assert_eq!(amounts, vec![dec("-0.02927428"), dec("-0.02911399")]);
    assert_ne!(facts[0].0, facts[1].0);
    assert_eq!(
        again.book.lock().await.realized_today,
        realized_before - dec("0.02927428") - dec("0.02911399")
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_fee_is_recorded_once_too() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let mut fx = fixture().await;
    fx.db_url = pg.url();
    let ex = fx.execution(settings()).await;
    assert_eq!(ex.db.store.backend(), qt_store::Backend::Postgres);
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-pg-funded", "0.01", mark))
        .await
        .unwrap();
    ex.poll_orders().await.unwrap();
    fx.wait_event(Stream::Positions, "PositionOpened", |e| {
        matches!(e, Event::PositionOpened(_))
    })
    .await;
    let realized_before = ex.book.lock().await.realized_today;
    fx.control("/sim/step?candles=21", None).await;
    // No user stream here: the pass reads the income history (0.01 × 29274.28 × 0.0001).
    assert_eq!(ex.sync_funding().await.unwrap(), 1);
    assert_eq!(ex.sync_funding().await.unwrap(), 0);
    let restarted = fx.execution(settings()).await;
    assert_eq!(restarted.sync_funding().await.unwrap(), 0);
    let facts = funding_facts(&fx).await;
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].1.amount, dec("-0.02927428"));
    assert_eq!(
        restarted.book.lock().await.realized_today,
        realized_before - dec("0.02927428")
    );
    fx.stop().await;
}
