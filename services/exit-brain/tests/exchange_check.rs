//! After a restart, the `exit-brain` binary checks its stored plans against the real simulator
//! (positions and open algo orders through `qt-exchange`) before it consumes anything: a
//! position left without a stop is protected again, a plan whose position is gone raises an
//! alert, and a position whose stop rests is left alone. Levels are rounded with the filters the
//! exchange serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use exit_brain::brain::STOP_LEG;
use qt_bus::{Bus, BusConfig};
use qt_events::clock::system;
use qt_events::ids::{client_order_id, derived_event_id};
use qt_events::{Decimal, Envelope, Event, Side, Stream, StreamNames};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig, NewAlgoOrder, NewOrder};
use qt_testkit::{ChildService, RedisServer, SimExchange};
use rust_decimal_macros::dec;

const KEY: &str = "eb-key";
const SECRET: &str = "eb-secret";

async fn entries(bus: &Bus, stream: Stream) -> Vec<Envelope> {
    bus.range(&bus.key(stream), "-", "+", 10_000)
        .await
        .unwrap()
        .iter()
        .filter_map(|r| Envelope::from_fields(r.field_pairs()).ok())
        .collect()
}

async fn wait_until<T, F, Fut>(child: &ChildService, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn protect_intents(es: &[Envelope]) -> Vec<(String, String, Decimal)> {
    es.iter()
        .filter_map(|e| match &e.event {
            Event::ProtectPosition(p) => Some((
                p.symbol.clone(),
                p.intent_id.clone(),
                p.stop.as_ref().map(|s| s.trigger_price).unwrap_or_default(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_plans_are_checked_against_the_exchange_before_acting() {
    qt_exchange::install_crypto_provider();
    // The real simulator over HTTP, replaying the repo's BTCUSDT candles.
    let sim = SimExchange::builder()
        .key(KEY, SECRET)
        .repo_data(&["BTCUSDT"])
        .warmup_candles(300)
        .start();
    let base = sim.rest_url();
    let ws = sim.ws_url();
    let ex = BinanceClient::new(
        ExchangeConfig::default()
            .with_urls(base.clone(), ws.clone())
            .with_credentials(KEY, SECRET),
        system(),
    )
    .unwrap();
    ex.sync_time().await.unwrap();
    // A long position on the exchange, with no stop yet.
    ex.new_order(&NewOrder::market(
        "BTCUSDT",
        Side::Buy,
        dec!(0.01),
        "eb-entry-1",
    ))
    .await
    .unwrap();
    let entry = ex.positions(Some("BTCUSDT")).await.unwrap()[0].entry_price;

    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = "t-check:";
    let bus = Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new(prefix), "test"),
        system(),
    )
    .unwrap();
    let (url, db) = (
        redis.url(),
        format!("sqlite://{}", dir.path().join("eb.sqlite").display()),
    );
    let env_vars: Vec<(&str, &str)> = vec![
        ("QT_REDIS_URL", &url),
        ("QT_STREAM_PREFIX", prefix),
        ("QT_HTTP_ADDR", "127.0.0.1:0"),
        ("QT_DATABASE_URL", &db),
        ("QT_LOG_FORMAT", "json"),
        ("QT_EXCHANGE", "paper"),
        ("QT_EXCHANGE_REST_URL", &base),
        ("QT_EXCHANGE_WS_URL", &ws),
        ("QT_API_KEY", KEY),
        ("QT_API_SECRET", SECRET),
    ];
    let mut child = ChildService::spawn(
        PathBuf::from(env!("CARGO_BIN_EXE_exit-brain")),
        &[],
        &env_vars,
        dir.path().join("exit-brain.log"),
    );
    let clock = system();
    let publish = |event: Event, id: &str| {
        let e = env(event, id, clock.as_ref());
        let bus = bus.clone();
        async move { bus.publish(&e).await.unwrap() }
    };
    publish(opened("p1", "BTCUSDT", dec!(0.01), entry, 1), "open-1").await;
    // A plan for a position the exchange does not hold.
    publish(opened("p2", "XRPUSDT", dec!(100), dec!(0.5), 1), "open-2").await;
    let first = wait_until(&child, "both protects", || async {
        let p = protect_intents(&entries(&bus, Stream::Intents).await);
        (p.len() == 2).then_some(p)
    })
    .await;
    let btc_stop = first.iter().find(|p| p.0 == "BTCUSDT").unwrap().2;
    let log = child.output();
    let candles: usize = log
        .lines()
        .filter(|l| l.contains("volatility history loaded") && l.contains("BTCUSDT"))
        .find_map(|l| {
            let rest = &l[l.find("\"candles\":")? + 10..];
            rest[..rest.find(|c: char| !c.is_ascii_digit())?]
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(
        candles >= 200,
        "the ladder adapts from the first trade ({candles} candles): {log}"
    );
    assert!(
        log.lines().any(|l| l.contains("volatility history loaded")
            && l.contains("BTCUSDT")
            && l.contains("\"candles\":")),
        "the ladder adapts from the first trade: {log}"
    );
    assert_eq!(
        btc_stop,
        (btc_stop * dec!(10)).trunc() / dec!(10),
        "the stop is on the exchange's 0.1 tick"
    );

    // Killed; nothing placed the stop meanwhile. The restart finds the bare position.
    child.kill9();
    child.start();
    let rev2 = derived_event_id(&["exit-brain", "p1", "protect", "2"]);
    let again = wait_until(&child, "the re-protect at start", || async {
        protect_intents(&entries(&bus, Stream::Intents).await)
            .into_iter()
            .find(|p| p.1 == rev2)
    })
    .await;
    assert_eq!(again.2, btc_stop, "the same stop, placed again");
    wait_until(&child, "the alert for the plan without position", || async {
        entries(&bus, Stream::Alerts).await.into_iter().find(|e| {
            matches!(&e.event, Event::AlertRaised(a) if a.rule == "plan_without_position" && a.key == "XRPUSDT")
        })
    })
    .await;

    // Now the stop rests on the exchange (as execution would place it): a restart leaves it be.
    ex.new_algo_order(&NewAlgoOrder::stop_close_position(
        "BTCUSDT",
        Side::Sell,
        btc_stop,
        client_order_id(&rev2, STOP_LEG),
    ))
    .await
    .unwrap();
    child.kill9();
    let checks_before = child.output().matches("stored plans checked").count();
    child.start();
    wait_until(&child, "the third start's check", || async {
        (child.output().matches("stored plans checked").count() > checks_before).then_some(())
    })
    .await;
    let ps = protect_intents(&entries(&bus, Stream::Intents).await);
    assert_eq!(
        ps.len(),
        3,
        "no new protect for a position whose stop rests: {ps:?}"
    );
    let log = child.output();
    assert_eq!(log.matches("stored plans checked").count(), 2, "{log}");
    child.kill9();
    drop(sim);
}

/// exit-brain as a process, configured with `env` (plus Redis, database and the simulator).
fn spawn_exit_brain(
    redis: &RedisServer,
    dir: &tempfile::TempDir,
    prefix: &str,
    sim: &SimExchange,
    extra: &[(&str, &str)],
    log: &str,
) -> ChildService {
    let (url, db, base, ws) = (
        redis.url(),
        format!("sqlite://{}", dir.path().join("eb.sqlite").display()),
        sim.rest_url(),
        sim.ws_url(),
    );
    let mut env_vars: Vec<(&str, &str)> = vec![
        ("QT_REDIS_URL", &url),
        ("QT_STREAM_PREFIX", prefix),
        ("QT_HTTP_ADDR", "127.0.0.1:0"),
        ("QT_DATABASE_URL", &db),
        ("QT_LOG_FORMAT", "json"),
        ("QT_EXCHANGE", "paper"),
        ("QT_EXCHANGE_REST_URL", &base),
        ("QT_EXCHANGE_WS_URL", &ws),
        ("QT_API_KEY", KEY),
        ("QT_API_SECRET", SECRET),
    ];
    env_vars.extend_from_slice(extra);
    ChildService::spawn(
        PathBuf::from(env!("CARGO_BIN_EXE_exit-brain")),
        &[],
        &env_vars,
        dir.path().join(log),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_hedge_mode_each_side_is_protected_and_checked_apart_after_a_restart() {
    qt_exchange::install_crypto_provider();
    let sim = SimExchange::builder()
        .key(KEY, SECRET)
        .repo_data(&["BTCUSDT"])
        .warmup_candles(300)
        .start();
    let mut cfg = ExchangeConfig::default()
        .with_urls(sim.rest_url(), sim.ws_url())
        .with_credentials(KEY, SECRET);
    cfg.account_modes.position_mode = qt_exchange::PositionMode::Hedge;
    let ex = BinanceClient::new(cfg, system()).unwrap();
    ex.sync_time().await.unwrap();

    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = "t-hedge:";
    let bus = Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new(prefix), "test"),
        system(),
    )
    .unwrap();
    // Configured for hedge mode on a one-way account: refused at start, exit 2, both named.
    let mut refused = spawn_exit_brain(
        &redis,
        &dir,
        prefix,
        &sim,
        &[("QT_POSITION_MODE", "hedge")],
        "refused.log",
    );
    let status = refused.wait_exit(30);
    assert_eq!(status.code(), Some(2), "{}", refused.output());
    assert!(
        refused.output().contains("QT_POSITION_MODE=hedge"),
        "{}",
        refused.output()
    );

    // The account in hedge mode with a long and a short of BTCUSDT, neither protected yet.
    ex.set_dual_side_position(true).await.unwrap();
    ex.new_order(&NewOrder::market(
        "BTCUSDT",
        Side::Buy,
        dec!(0.01),
        "eb-long",
    ))
    .await
    .unwrap();
    ex.new_order(&NewOrder::market(
        "BTCUSDT",
        Side::Sell,
        dec!(0.02),
        "eb-short",
    ))
    .await
    .unwrap();
    let positions = ex.positions(Some("BTCUSDT")).await.unwrap();
    let entry_of = |side: qt_exchange::PositionSideWire| {
        positions
            .iter()
            .find(|p| p.position_side == side && !p.position_amt.is_zero())
            .unwrap()
            .entry_price
    };
    let (long_entry, short_entry) = (
        entry_of(qt_exchange::PositionSideWire::Long),
        entry_of(qt_exchange::PositionSideWire::Short),
    );

    let mut child = spawn_exit_brain(
        &redis,
        &dir,
        prefix,
        &sim,
        &[("QT_POSITION_MODE", "hedge")],
        "exit-brain.log",
    );
    let clock = system();
    let publish = |event: Event, id: &str| {
        let e = env(event, id, clock.as_ref());
        let bus = bus.clone();
        async move { bus.publish(&e).await.unwrap() }
    };
    publish(opened("pL", "BTCUSDT", dec!(0.01), long_entry, 1), "open-L").await;
    let short = Event::PositionOpened(qt_events::PositionOpened {
        position_id: "pS".into(),
        intent_id: "open-pS".into(),
        ..qt_testkit::build::opened(
            "BTCUSDT",
            qt_events::PositionSide::Short,
            dec!(0.02),
            short_entry,
            1,
        )
    });
    publish(short, "open-S").await;
    let sides = |es: &[Envelope]| {
        es.iter()
            .filter_map(|e| match &e.event {
                Event::ProtectPosition(p) => Some((p.position_side, p.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let first = wait_until(&child, "a protect for each side", || async {
        let p = sides(&entries(&bus, Stream::Intents).await);
        (p.len() == 2).then_some(p)
    })
    .await;
    let long = first
        .iter()
        .find(|p| p.0 == qt_events::PositionSide::Long)
        .expect("the long's protect")
        .1
        .clone();
    let short = first
        .iter()
        .find(|p| p.0 == qt_events::PositionSide::Short)
        .expect("the short's protect")
        .1
        .clone();
    let long_stop = long.stop.as_ref().unwrap().trigger_price;
    let short_stop = short.stop.as_ref().unwrap().trigger_price;
    assert!(long_stop < long_entry && short_stop > short_entry);

    // Only the long's stop rests on the exchange (positionSide LONG, as execution places it).
    ex.new_algo_order(&NewAlgoOrder::stop_close_position(
        "BTCUSDT",
        Side::Sell,
        long_stop,
        client_order_id(&long.intent_id, STOP_LEG),
    ))
    .await
    .unwrap();
    child.kill9();
    child.start();
    let rev2 = derived_event_id(&["exit-brain", "pS", "protect", "2"]);
    let again = wait_until(&child, "the short protected again at start", || async {
        sides(&entries(&bus, Stream::Intents).await)
            .into_iter()
            .find(|p| p.1.intent_id == rev2)
    })
    .await;
    assert_eq!(again.0, qt_events::PositionSide::Short);
    assert_eq!(again.1.stop.as_ref().unwrap().trigger_price, short_stop);
    let all = sides(&entries(&bus, Stream::Intents).await);
    assert_eq!(
        all.len(),
        3,
        "the long, whose stop rests, is left alone: {all:?}"
    );
    assert!(
        !entries(&bus, Stream::Alerts).await.iter().any(
            |e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "plan_without_position")
        ),
        "both plans meet their side's position"
    );
    child.kill9();
    drop(sim);
}
