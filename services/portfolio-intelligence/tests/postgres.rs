//! The store on PostgreSQL (a throw-away server; skips with a message when the binaries are
//! absent): migrations recorded in `_portfolio_migrations`, applied once, and every row reads
//! back as written.
#![allow(clippy::unwrap_used)]

use portfolio_intelligence::Db;
use portfolio_intelligence::book::{FundingCharge, ModelInfo, OpenPosition};
use portfolio_intelligence::metrics::ClosedTrade;
use qt_events::PortfolioSnapshot;
use rust_decimal_macros::dec;
use sqlx::Row;

#[tokio::test]
async fn the_store_works_on_postgres() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let url = pg.url();
    let db = Db::open(&url).await.unwrap();
    let snap = PortfolioSnapshot {
        ts: 1000,
        equity: dec!(10083.9),
        wallet_balance: dec!(10087.4),
        unrealized_pnl: dec!(-3.5),
        realized_pnl_today: dec!(87.4),
        daily_pnl: dec!(83.9),
        gross_exposure: dec!(5068.5),
        net_exposure: dec!(-1003.5),
        long_exposure: dec!(2032.5),
        short_exposure: dec!(3036),
        open_positions: 2,
    };
    db.save_snapshot(&snap, &serde_json::json!({"k": 1}))
        .await
        .unwrap();
    db.save_snapshot(&snap, &serde_json::json!({"k": 2}))
        .await
        .unwrap();
    assert_eq!(db.snapshot_count().await.unwrap(), 1, "one row per ms");
    assert_eq!(
        db.equity_curve(10).await.unwrap(),
        vec![(1000, dec!(10083.9))]
    );
    let t = ClosedTrade {
        position_id: "p1".into(),
        symbol: "BTCUSDT".into(),
        side: "LONG".into(),
        quantity: dec!(0.5),
        entry_price: dec!(40000),
        exit_price: dec!(40100),
        realized_pnl: dec!(50),
        fees: dec!(4),
        net_pnl: dec!(46),
        model_version: "v1".into(),
        opened_at: 1,
        closed_at: 2,
        reason: "take_profit".into(),
    };
    db.save_trade(&t).await.unwrap();
    db.save_trade(&t).await.unwrap();
    assert_eq!(db.trades(10).await.unwrap(), vec![t]);
    let p = OpenPosition {
        position_id: "p2".into(),
        symbol: "ETHUSDT".into(),
        side: "SHORT".into(),
        quantity: dec!(1.5),
        entry_price: dec!(2000),
        realized_pnl: dec!(0),
        fees: dec!(0),
        leverage: 5,
        opened_at: 3,
        model_version: "v1".into(),
    };
    db.save_position("ETHUSDT", Some(&p)).await.unwrap();
    assert_eq!(db.positions().await.unwrap(), vec![p]);
    db.save_position("ETHUSDT", None).await.unwrap();
    assert!(db.positions().await.unwrap().is_empty());
    let m = ModelInfo {
        model: "gbdt".into(),
        model_version: "v1".into(),
        since: 5,
        last_signal_at: Some(6),
    };
    db.save_model(&m).await.unwrap();
    assert_eq!(db.model().await.unwrap(), Some(m));
    let c = FundingCharge {
        key: "BTCUSDT|42".into(),
        symbol: "BTCUSDT".into(),
        amount: dec!(-0.02927428),
        time: 7,
        position_id: Some("p1".into()),
        model_version: "v1".into(),
    };
    assert!(db.save_funding(&c).await.unwrap());
    assert!(!db.save_funding(&c).await.unwrap(), "once per transaction");
    assert_eq!(db.funding(10).await.unwrap(), vec![c]);
    drop(db);
    // A second start applies nothing twice.
    let db = Db::open(&url).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM _portfolio_migrations")
        .fetch_one(db.store().pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    // One per migration file (0001_portfolio, 0002_funding).
    assert_eq!(n, 2);
}
