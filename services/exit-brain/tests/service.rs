//! The `exit-brain` binary as a child process against a real `redis-server` and a real SQLite
//! file: events are published to the streams with `qt-bus`, and the intents it publishes are
//! read back from `intents` and `alerts`. One test SIGKILLs it mid-stream and restarts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use exit_brain::brain::STOP_LEG;
use exit_brain::sql::SqlStore;
use exit_brain::store::PlanStore;
use qt_bus::{Bus, BusConfig};
use qt_events::clock::{SharedClock, system};
use qt_events::ids::{client_order_id, derived_event_id};
use qt_events::{Envelope, Event, OrderKind, Stream, StreamNames};
use qt_testkit::{ChildService, RedisServer};
use rust_decimal_macros::dec;

struct Stack {
    redis: RedisServer,
    dir: tempfile::TempDir,
    prefix: String,
    bus: Bus,
    clock: SharedClock,
}

impl Stack {
    fn new(name: &str) -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("t-{name}:");
        let clock = system();
        let bus = Bus::connect(
            BusConfig::new(redis.url(), StreamNames::new(prefix.clone()), "test"),
            clock.clone(),
        )
        .unwrap();
        Self {
            redis,
            dir,
            prefix,
            bus,
            clock,
        }
    }

    fn db_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("exit-brain.sqlite").display()
        )
    }

    fn spawn(&self, extra: &[(&str, &str)]) -> ChildService {
        let url = self.redis.url();
        let db = self.db_url();
        let mut env: Vec<(&str, &str)> = vec![
            ("QT_REDIS_URL", &url),
            ("QT_STREAM_PREFIX", &self.prefix),
            ("QT_HTTP_ADDR", "127.0.0.1:0"),
            ("QT_DATABASE_URL", &db),
            ("QT_LOG_FORMAT", "json"),
            ("QT_LOG_LEVEL", "info"),
            ("QT_EXIT_BRAIN__CHECK_EXCHANGE_ON_START", "false"),
        ];
        env.extend_from_slice(extra);
        ChildService::spawn(
            PathBuf::from(env!("CARGO_BIN_EXE_exit-brain")),
            &[],
            &env,
            self.dir.path().join("exit-brain.log"),
        )
    }

    async fn publish(&self, event: Event, id: &str) -> Envelope {
        let e = env(event, id, self.clock.as_ref());
        self.bus.publish(&e).await.unwrap();
        e
    }

    async fn entries(&self, stream: Stream) -> Vec<Envelope> {
        self.bus
            .range(&self.bus.key(stream), "-", "+", 100_000)
            .await
            .unwrap()
            .iter()
            .filter_map(|r| Envelope::from_fields(r.field_pairs()).ok())
            .collect()
    }

    /// Waits until `f` finds something in `stream`, or panics with the service's log.
    async fn wait<T>(
        &self,
        child: &ChildService,
        stream: Stream,
        secs: u64,
        what: &str,
        f: impl Fn(&[Envelope]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f(&self.entries(stream).await) {
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
}

fn protects(entries: &[Envelope]) -> Vec<&qt_events::ProtectPosition> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::ProtectPosition(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn stop_of(p: &qt_events::ProtectPosition) -> qt_events::Decimal {
    p.stop.as_ref().map(|s| s.trigger_price).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protects_on_open_moves_to_break_even_after_tp1_trails_marks_and_learns_on_close() {
    let s = Stack::new("flow");
    let child = s.spawn(&[]);
    s.publish(opened("p1", "BTCUSDT", dec!(1), dec!(100), 1), "open")
        .await;
    let first = s
        .wait(&child, Stream::Intents, 20, "the protect intent", |es| {
            protects(es).first().map(|p| (*p).clone())
        })
        .await;
    assert_eq!(stop_of(&first), dec!(98));
    assert_eq!(first.take_profits.len(), 3);
    let intent = first.intent_id.clone();
    s.publish(
        accepted(
            &intent,
            &client_order_id(&intent, STOP_LEG),
            "BTCUSDT",
            OrderKind::StopMarket,
        ),
        "stop-accepted",
    )
    .await;
    s.publish(
        tp_filled(
            &intent,
            &client_order_id(&intent, "tp1"),
            "BTCUSDT",
            dec!(0.3),
            dec!(101.95),
        ),
        "tp1-filled",
    )
    .await;
    let be = s
        .wait(&child, Stream::Intents, 20, "the break-even stop", |es| {
            protects(es).get(1).map(|p| (*p).clone())
        })
        .await;
    assert_eq!(stop_of(&be), dec!(100));
    assert!(be.take_profits.is_empty());
    s.publish(mark("BTCUSDT", dec!(104), 2), "mark-104").await;
    let trail = s
        .wait(&child, Stream::Intents, 20, "the trailing stop", |es| {
            protects(es).get(2).map(|p| (*p).clone())
        })
        .await;
    assert_eq!(stop_of(&trail), dec!(102.96));
    s.publish(
        closed(
            "p1",
            "BTCUSDT",
            dec!(1),
            dec!(100),
            dec!(103),
            3,
            "trailing",
        ),
        "closed",
    )
    .await;
    let store = SqlStore::connect(&s.db_url(), 0).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let outcomes = loop {
        let o = store.outcomes("BTCUSDT").await.unwrap();
        if !o.is_empty() {
            break o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no outcome recorded; log:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outcomes[0].profile_after.trades, 1);
    assert_eq!(store.load().await.unwrap().profiles["BTCUSDT"].trades, 1);
    assert_eq!(
        protects(&s.entries(Stream::Intents).await).len(),
        3,
        "no intent twice"
    );
}

/// A position opened on the signal of a model that carries its exits (chosen on validation
/// data when it was trained) is protected with that model's stop and targets; one without
/// them gets the configured exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_is_protected_with_the_exits_of_the_model_that_opened_it() {
    let s = Stack::new("model-exits");
    let child = s.spawn(&[]);
    let model_exits = qt_exits::ExitConfig {
        low_vol_targets_pct: vec![dec!(1), dec!(2.5)],
        high_vol_targets_pct: vec![dec!(1.5), dec!(3)],
        leg_fractions: vec![dec!(0.5), dec!(0.5)],
        stop_pct: dec!(1.2),
        ..qt_exits::ExitConfig::default()
    };
    let Event::PositionOpened(mut p) = opened("p1", "BTCUSDT", dec!(1), dec!(100), 1) else {
        unreachable!()
    };
    p.signal = Some(qt_events::SignalRef {
        signal_id: "sig-1".into(),
        model: "gbdt".into(),
        model_version: "gbdt-x".into(),
        confidence: 0.6,
        features: Default::default(),
        exits: Some(qt_events::ExitSettings::from(&model_exits)),
    });
    s.publish(Event::PositionOpened(p), "open-model").await;
    s.publish(opened("p2", "ETHUSDT", dec!(1), dec!(100), 1), "open-plain")
        .await;
    let (with, without) = s
        .wait(&child, Stream::Intents, 20, "both protect intents", |es| {
            let ps = protects(es);
            let of = |sym: &str| ps.iter().find(|p| p.symbol == sym).map(|p| (*p).clone());
            Some((of("BTCUSDT")?, of("ETHUSDT")?))
        })
        .await;
    // The model's exits: a 1.2% stop and its two legs at +1% and +2.5% (calm ladder).
    assert_eq!(stop_of(&with), dec!(98.8));
    let legs: Vec<_> = with
        .take_profits
        .iter()
        .map(|t| (t.trigger_price, t.quantity))
        .collect();
    assert_eq!(
        legs,
        vec![(dec!(101), dec!(0.5)), (dec!(102.5), dec!(0.5))],
        "{with:?}"
    );
    // The configured exits: the 2% stop and the three-leg ladder.
    assert_eq!(stop_of(&without), dec!(98));
    assert_eq!(without.take_profits.len(), 3);
    assert_eq!(without.take_profits[0].trigger_price, dec!(101.95));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_without_a_confirmed_stop_is_closed_by_the_watchdog_with_an_alert() {
    let s = Stack::new("watchdog");
    let child = s.spawn(&[
        ("QT_EXIT_BRAIN__WATCHDOG_SECS", "1"),
        ("QT_EXIT_BRAIN__WATCHDOG_TICK_MS", "100"),
    ]);
    s.publish(opened("p1", "ETHUSDT", dec!(2), dec!(2000), 1), "open")
        .await;
    let close = s
        .wait(&child, Stream::Intents, 20, "the watchdog's close", |es| {
            es.iter().find_map(|e| match &e.event {
                Event::ClosePosition(c) => Some(c.clone()),
                _ => None,
            })
        })
        .await;
    assert_eq!(
        (close.symbol.as_str(), close.reason.as_str()),
        ("ETHUSDT", "stop_not_confirmed")
    );
    let alert = s
        .wait(&child, Stream::Alerts, 20, "the alert", |es| {
            es.iter().find_map(|e| match &e.event {
                Event::AlertRaised(a) => Some(a.clone()),
                _ => None,
            })
        })
        .await;
    assert_eq!(alert.rule, "stop_not_confirmed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let closes = s
        .entries(Stream::Intents)
        .await
        .iter()
        .filter(|e| matches!(e.event, Event::ClosePosition(_)))
        .count();
    assert_eq!(closes, 1, "the watchdog fires once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_mid_stream_it_resumes_without_a_duplicate_or_a_missing_intent() {
    let s = Stack::new("kill");
    let mut child = s.spawn(&[]);
    const N: usize = 300;
    for i in 0..N {
        s.publish(
            opened(&format!("p{i}"), &format!("S{i}USDT"), dec!(1), dec!(10), 1),
            &format!("open-{i}"),
        )
        .await;
    }
    s.wait(&child, Stream::Intents, 20, "a first protect", |es| {
        (!protects(es).is_empty()).then_some(())
    })
    .await;
    child.kill9();
    let seen_at_kill = protects(&s.entries(Stream::Intents).await).len();
    eprintln!("SIGKILLed after {seen_at_kill} of {N} protects");
    child.start();
    s.wait(
        &child,
        Stream::Intents,
        30,
        "a protect for every position",
        |es| (protects(es).len() >= N).then_some(()),
    )
    .await;
    // A duplicate of an event already handled (its producer published it twice) is dropped.
    s.publish(opened("p0", "S0USDT", dec!(1), dec!(10), 1), "open-0")
        .await;
    s.publish(mark("S1USDT", dec!(11), 2), "mark").await;
    s.wait(
        &child,
        Stream::Intents,
        20,
        "the trailing stop after the duplicate",
        |es| {
            protects(es)
                .iter()
                .any(|p| p.symbol == "S1USDT" && stop_of(p) > dec!(9.8))
                .then_some(())
        },
    )
    .await;
    let all = s.entries(Stream::Intents).await;
    let ps = protects(&all);
    let mut ids: Vec<&str> = ps.iter().map(|p| p.intent_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        ps.len(),
        "an intent id published twice (killed after {seen_at_kill})"
    );
    assert_eq!(
        ps.len(),
        N + 1,
        "one protect per position plus the trailing move"
    );
    for i in 0..N {
        let want = derived_event_id(&["exit-brain", &format!("p{i}"), "protect", "1"]);
        assert!(ids.contains(&want.as_str()), "p{i} has no protect");
    }
}
