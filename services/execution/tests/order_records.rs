//! The typed order records through the store, on SQLite and (when installed) PostgreSQL: every
//! spec reads back as it was written, and a record's state moves only as the transition table
//! allows — a late or racing update never moves an order backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use execution::{
    Conditional, Db, Leg, OrderEvent, OrderRecord, OrderSpec, OrderState, PlainOrder, Pricing,
    Rejection,
};
use qt_events::{RejectReason, Side, SignalRef, WorkingType};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn record(coid: &str, leg: Leg, spec: OrderSpec) -> OrderRecord {
    OrderRecord {
        client_order_id: coid.into(),
        intent_id: format!("intent-{coid}"),
        leg,
        symbol: "BTCUSDT".into(),
        side: Side::Sell,
        spec,
        state: OrderState::Sending,
        exchange_order_id: None,
        filled_qty: Decimal::ZERO,
        avg_price: Decimal::ZERO,
        exit_reason: None,
        rejection: None,
        sent_at: 1_000,
        updated_at: 1_000,
    }
}

fn every_kind() -> Vec<OrderRecord> {
    let entry = OrderRecord {
        side: Side::Buy,
        ..record(
            "entry",
            Leg::Entry,
            OrderSpec::Plain(PlainOrder {
                pricing: Pricing::Limit {
                    price: dec!(29000.5),
                },
                quantity: dec!(0.01),
                reduce_only: false,
                leverage: 5,
                reference_price: Some(dec!(29001)),
                signal: Some(SignalRef {
                    signal_id: "sig".into(),
                    model: "m".into(),
                    model_version: "v1".into(),
                    confidence: 0.75,
                    features: [("rsi".to_string(), 55.0)].into_iter().collect(),
                    exits: None,
                }),
            }),
        )
    };
    let reduce = OrderRecord {
        exit_reason: Some("time_stop".into()),
        ..record(
            "reduce",
            Leg::Reduce,
            OrderSpec::Plain(PlainOrder {
                pricing: Pricing::Market,
                quantity: dec!(0.004),
                reduce_only: true,
                leverage: 0,
                reference_price: None,
                signal: None,
            }),
        )
    };
    let close_all = OrderRecord {
        exit_reason: Some("close_all".into()),
        ..record(
            "close-all",
            Leg::CloseAll("BTCUSDT".into()),
            OrderSpec::Close {
                quantity: dec!(0.02),
            },
        )
    };
    let stop = record(
        "stop",
        Leg::Stop,
        OrderSpec::Conditional(Conditional::Stop {
            trigger: dec!(28000),
            working_type: WorkingType::MarkPrice,
        }),
    );
    let tp = record(
        "tp1",
        Leg::TakeProfit("tp1".into()),
        OrderSpec::Conditional(Conditional::TakeProfit {
            trigger: dec!(30000),
            quantity: dec!(0.005),
        }),
    );
    let trailing = record(
        "trailing",
        Leg::Trailing,
        OrderSpec::Conditional(Conditional::Trailing {
            activation: dec!(30500),
            callback_rate: dec!(1.5),
            quantity: dec!(0.005),
        }),
    );
    let refused = OrderRecord {
        state: OrderState::Rejected,
        rejection: Some(Rejection {
            reason: RejectReason::Superseded,
            message: "a later protect intent replaces this leg".into(),
            exchange_code: None,
        }),
        ..record("refused", Leg::TakeProfit("tp2".into()), OrderSpec::Refused)
    };
    vec![entry, reduce, close_all, stop, tp, trailing, refused]
}

async fn state(db: &Db, coid: &str) -> OrderState {
    db.order(coid).await.unwrap().unwrap().state
}

async fn records_keep_their_spec_and_move_only_as_the_table_allows(db: &Db) {
    for o in every_kind() {
        assert!(db.record_order(&o).await.unwrap());
        assert!(!db.record_order(&o).await.unwrap(), "recorded once");
        assert_eq!(db.order(&o.client_order_id).await.unwrap().unwrap(), o);
    }

    // Acked, then filled in two parts; an acknowledgement arriving last keeps FILLED.
    db.mark_acked("entry", "77", 2_000).await.unwrap();
    assert_eq!(state(db, "entry").await, OrderState::Acked);
    let mut tx = db.begin().await.unwrap();
    let part = OrderEvent::Filled { complete: false };
    Db::set_filled(&mut tx, "entry", dec!(0.004), dec!(29000), part, 2_001)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let entry = db.order("entry").await.unwrap().unwrap();
    assert_eq!(entry.state, OrderState::PartiallyFilled);
    assert_eq!(entry.avg_price, dec!(29000));
    assert_eq!(entry.price_in_flight(), dec!(29000));
    let mut tx = db.begin().await.unwrap();
    let full = OrderEvent::Filled { complete: true };
    Db::set_filled(&mut tx, "entry", dec!(0.01), dec!(29000), full, 2_002)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.mark_acked("entry", "77", 2_003).await.unwrap();
    assert_eq!(state(db, "entry").await, OrderState::Filled);
    // A filled order does not end as cancelled after all.
    let mut tx = db.begin().await.unwrap();
    let cancelled = OrderEvent::Ended { expired: false };
    assert!(
        !Db::end_order(&mut tx, "entry", cancelled, None, 2_004)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(state(db, "entry").await, OrderState::Filled);

    // A conditional order fires, then the order it placed fills.
    db.mark_acked("stop", "9", 2_000).await.unwrap();
    db.mark_triggered("stop", Some("1234"), 2_001)
        .await
        .unwrap();
    let stop = db.order("stop").await.unwrap().unwrap();
    assert_eq!(stop.state, OrderState::Triggered);
    assert_eq!(stop.exchange_order_id.as_deref(), Some("1234"));
    assert_eq!(
        db.order_by_exchange_id("1234").await.unwrap().unwrap().leg,
        Leg::Stop
    );
    let mut tx = db.begin().await.unwrap();
    let fired = OrderEvent::TriggeredFill { complete: true };
    Db::set_filled(&mut tx, "stop", dec!(0.02), dec!(27990), fired, 2_002)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(state(db, "stop").await, OrderState::Filled);

    // Refused by the exchange while SENDING; a refusal after the acknowledgement is refused.
    let rejection = Rejection {
        reason: RejectReason::WouldImmediatelyTrigger,
        message: "would immediately trigger".into(),
        exchange_code: Some(-2021),
    };
    db.mark_acked("tp1", "10", 2_000).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(
        Db::end_order(
            &mut tx,
            "trailing",
            OrderEvent::Rejected,
            Some(&rejection),
            2_000
        )
        .await
        .unwrap()
    );
    assert!(
        !Db::end_order(
            &mut tx,
            "tp1",
            OrderEvent::Rejected,
            Some(&rejection),
            2_001
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    let trailing = db.order("trailing").await.unwrap().unwrap();
    assert_eq!(trailing.state, OrderState::Rejected);
    assert_eq!(trailing.rejection, Some(rejection));
    assert_eq!(state(db, "tp1").await, OrderState::Acked);

    // Expired, then a late fill is recorded without reviving the order.
    let mut tx = db.begin().await.unwrap();
    let expired = OrderEvent::Ended { expired: true };
    assert!(
        Db::end_order(&mut tx, "tp1", expired, None, 2_002)
            .await
            .unwrap()
    );
    Db::set_filled(&mut tx, "tp1", dec!(0.001), dec!(30000), part, 2_003)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let tp = db.order("tp1").await.unwrap().unwrap();
    assert_eq!(
        (tp.state, tp.filled_qty),
        (OrderState::Expired, dec!(0.001))
    );

    let mut live: Vec<String> = db
        .live_orders()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.client_order_id)
        .collect();
    live.sort();
    assert_eq!(live, ["close-all", "reduce"]);
}

#[tokio::test]
async fn order_records_round_trip_and_follow_the_transition_table_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&qt_store::sqlite_url(&dir.path().join("orders.db")))
        .await
        .unwrap();
    records_keep_their_spec_and_move_only_as_the_table_allows(&db).await;
}

#[tokio::test]
async fn order_records_round_trip_and_follow_the_transition_table_on_postgres() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let db = Db::open(&pg.url()).await.unwrap();
    records_keep_their_spec_and_move_only_as_the_table_allows(&db).await;
}
