//! The same store on PostgreSQL (a throw-away server started with `initdb` + `pg_ctl`; skipped
//! with a message when the binaries are absent): plans, the learned profile, the outcome and
//! the replay of a redelivered event read back as on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use exit_brain::sql::SqlStore;
use exit_brain::store::PlanStore;
use exit_brain::{Brain, BrainConfig};
use qt_events::clock::{ManualClock, SharedClock};
use qt_exits::ExitConfig;
use rust_decimal_macros::dec;

async fn brain(url: &str, clock: SharedClock) -> Brain<SqlStore> {
    let store = SqlStore::connect(url, 0).await.unwrap();
    let cfg = BrainConfig {
        exits: ExitConfig::default(),
        hedge: false,
        watchdog_ms: 5_000,
        volatility_interval: "5m".into(),
        volatility_window: 288,
    };
    Brain::load(store, clock, cfg).await.unwrap()
}

#[tokio::test]
async fn plans_profiles_outcomes_and_replays_survive_a_restart_on_postgres() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let url = pg.url();
    let clock: SharedClock = Arc::new(ManualClock::new(1_000));
    let open = env(
        opened("p1", "BTCUSDT", dec!(1), dec!(100), 1),
        "o1",
        clock.as_ref(),
    );
    let first = {
        let mut b = brain(&url, clock.clone()).await;
        let out = b.handle(&open, "positions/1-0").await.unwrap();
        b.handle(
            &env(
                opened("p2", "ETHUSDT", dec!(2), dec!(50), 1),
                "o2",
                clock.as_ref(),
            ),
            "positions/2-0",
        )
        .await
        .unwrap();
        b.handle(
            &env(
                closed("p2", "ETHUSDT", dec!(2), dec!(50), dec!(49), 2, "stop"),
                "x2",
                clock.as_ref(),
            ),
            "positions/3-0",
        )
        .await
        .unwrap();
        out
    };
    let mut b = brain(&url, clock.clone()).await;
    assert!(b.plan("p1").is_some() && b.plan("p2").is_none());
    assert_eq!(b.profile("ETHUSDT").trades, 1);
    assert_eq!(
        b.store().outcomes("ETHUSDT").await.unwrap()[0].net_pnl,
        dec!(-2)
    );
    assert_eq!(b.handle(&open, "positions/1-0").await.unwrap(), first);
    assert_eq!(b.plan("p1").unwrap().revision, 1);
}
