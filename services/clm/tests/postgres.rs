//! clm's repository on PostgreSQL (a throw-away server; skips with a message when the server
//! binaries are absent): the same migrations and queries as on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use clm::Db;
use clm::db::ModelRow;
use qt_events::{PositionClosed, PositionSide, SignalAction, SignalGenerated, SignalRef};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_round_trips_on_postgres() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let db = Db::open(&pg.url()).await.unwrap();
    // Migrations are recorded once: opening again is a no-op.
    let db2 = Db::open(&pg.url()).await.unwrap();

    let candles = qt_candles::read_klines(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/klines/5m/BTCUSDT-5m.csv.gz"),
    )
    .unwrap();
    let part = &candles[..250];
    assert_eq!(db.insert_candles("BTCUSDT", part).await.unwrap(), 250);
    assert_eq!(db2.insert_candles("BTCUSDT", &part[..10]).await.unwrap(), 0);
    let back = db.candles("BTCUSDT", 0, i64::MAX).await.unwrap();
    assert_eq!(back, part);
    assert_eq!(db.symbols().await.unwrap(), ["BTCUSDT"]);
    assert_eq!(
        db.last_candle_time().await.unwrap(),
        Some(part[249].open_time)
    );
    assert_eq!(
        db.count_candles_after(part[239].open_time).await.unwrap(),
        10
    );

    let sig = SignalGenerated {
        symbol: "BTCUSDT".into(),
        action: SignalAction::Sell,
        confidence: 0.6,
        model: "gbdt".into(),
        model_version: "v1".into(),
        candle_open_time: part[100].open_time,
        features: BTreeMap::new(),
        expected_return: None,
    };
    db.insert_signal("e1", &sig).await.unwrap();
    db.insert_signal("e1", &sig).await.unwrap();
    let mix = db.signal_mix("v1", 0).await.unwrap();
    assert_eq!((mix.count, mix.sell), (1, 1.0));

    let closed = PositionClosed {
        position_id: "p1".into(),
        symbol: "BTCUSDT".into(),
        side: PositionSide::Short,
        max_quantity: 1.into(),
        entry_price: 2.into(),
        exit_price: 1.into(),
        realized_pnl: 1.into(),
        fees: rust_decimal::Decimal::new(1, 1),
        net_pnl: rust_decimal::Decimal::new(9, 1),
        opened_at: 1,
        closed_at: 2,
        reason: "take_profit".into(),
        signal: Some(SignalRef {
            signal_id: "e1".into(),
            model: "gbdt".into(),
            model_version: "v1".into(),
            confidence: 0.6,
            features: BTreeMap::new(),
            exits: None,
        }),
    };
    db.insert_trade(&closed).await.unwrap();
    db.insert_trade(&closed).await.unwrap();
    assert_eq!(db.live_results("v1").await.unwrap(), (1, 1));
    assert_eq!(db.count_trades_after(1).await.unwrap(), 1);

    for (v, t) in [("v1", 1), ("v2", 2)] {
        db.upsert_model(&ModelRow {
            version: v.into(),
            kind: "gbdt".into(),
            created_at: t,
            artifact_uri: format!("/m/{v}.json"),
            sha256: "ab".into(),
            status: "challenger".into(),
            deployed_at: None,
            metadata: serde_json::json!({"n": t}),
        })
        .await
        .unwrap();
    }
    db.set_champion("v1", 10).await.unwrap();
    db.set_champion("v2", 20).await.unwrap();
    let models = db.models().await.unwrap();
    assert_eq!(models[0].version, "v2");
    assert_eq!(models[0].status, "champion");
    assert_eq!(models[0].deployed_at, Some(20));
    assert_eq!(models[1].status, "retired");
    db.insert_decision(
        "r1",
        5,
        "v2",
        Some("v1"),
        true,
        &serde_json::json!({"x": 1}),
    )
    .await
    .unwrap();
    let d = db.decisions().await.unwrap();
    assert_eq!(d.len(), 1);
    assert!(d[0].promoted);
    db.put_state("k", &3u32).await.unwrap();
    db.put_state("k", &4u32).await.unwrap();
    assert_eq!(db.get_state::<u32>("k").await.unwrap(), Some(4));
    db.delete_model("v1").await.unwrap();
    assert!(db.model("v1").await.unwrap().is_none());
}
