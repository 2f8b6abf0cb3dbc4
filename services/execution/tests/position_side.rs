//! An intent about the position of one side (`position_side` on `ClosePosition` and
//! `ReducePosition`, the side of a `ProtectPosition` whose stop the price is already through)
//! never acts on a position of the other side: against the real simulator with a real Redis
//! and a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_events::{
    ClosePosition, Envelope, Event, OrderKind, PositionSide, ProtectPosition, ReducePosition,
    RejectReason, StopLeg, Stream, WorkingType,
};
use rust_decimal::Decimal;

fn refused_no_position(out: &[Envelope]) -> bool {
    out.iter().any(|e| {
        matches!(&e.event, Event::OrderRejected(r)
            if r.reason == RejectReason::NoPosition)
    })
}

fn close(fx: &Fixture, intent_id: &str, side: Option<PositionSide>) -> Envelope {
    fx.bus.envelope(Event::ClosePosition(ClosePosition {
        intent_id: intent_id.into(),
        symbol: SYMBOL.into(),
        reason: "manual".into(),
        position_side: side,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_or_reduce_naming_the_other_side_leaves_the_position_open() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "side-open", "0.01", mark))
        .await
        .unwrap();
    fx.wait_event(Stream::Positions, "PositionOpened", |e| {
        matches!(e, Event::PositionOpened(_))
    })
    .await;
    assert_eq!(fx.position_amt().await, dec("0.01"));

    // An intent about a short (say, sent for a short this long replaced) is refused.
    let out = ex
        .handle_intent(&close(&fx, "side-close-short", Some(PositionSide::Short)))
        .await
        .unwrap();
    assert!(refused_no_position(&out), "{out:?}");
    let reduce = fx.bus.envelope(Event::ReducePosition(ReducePosition {
        intent_id: "side-reduce-short".into(),
        symbol: SYMBOL.into(),
        quantity: dec("0.005"),
        order_type: OrderKind::Market,
        limit_price: None,
        reason: "manual".into(),
        position_side: Some(PositionSide::Short),
    }));
    let out = ex.handle_intent(&reduce).await.unwrap();
    assert!(refused_no_position(&out), "{out:?}");
    assert_eq!(
        fx.position_amt().await,
        dec("0.01"),
        "the long is untouched"
    );

    // A long's stop the price is already through closes that long, but the same intent for a
    // short (whose stop is below the mark: through for a short) closes nothing here.
    let protect_short = fx.bus.envelope(Event::ProtectPosition(ProtectPosition {
        intent_id: "side-protect-short".into(),
        symbol: SYMBOL.into(),
        position_side: PositionSide::Short,
        stop: Some(StopLeg {
            trigger_price: (mark * dec("0.99")).round_dp(1),
            working_type: WorkingType::MarkPrice,
        }),
        take_profits: Vec::new(),
        trailing: None,
    }));
    let out = ex.handle_intent(&protect_short).await.unwrap();
    assert!(
        out.iter()
            .any(|e| matches!(&e.event, Event::OrderRejected(r)
            if r.reason == RejectReason::WouldImmediatelyTrigger)),
        "{out:?}"
    );
    assert!(refused_no_position(&out), "{out:?}");
    assert_eq!(
        fx.position_amt().await,
        dec("0.01"),
        "the long is untouched"
    );

    // The intent naming the side held closes it; one naming no side would too.
    let out = ex
        .handle_intent(&close(&fx, "side-close-long", Some(PositionSide::Long)))
        .await
        .unwrap();
    assert!(!refused_no_position(&out), "{out:?}");
    fx.wait_event(Stream::Positions, "PositionClosed", |e| {
        matches!(e, Event::PositionClosed(_))
    })
    .await;
    assert_eq!(fx.position_amt().await, Decimal::ZERO);
    stream.cancel();
    fx.stop().await;
}
