//! The consumer-group runner against a real redis-server.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use qt_bus::{Consumer, ConsumerConfig, Delivery, Handler, HandlerError, Outcome};
use qt_events::{Event, Stream};
use qt_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

fn fast(stream: Stream, group: &str, consumer: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(stream, group, consumer);
    c.block = Duration::from_millis(200);
    c.claim_min_idle = Duration::from_millis(300);
    c.janitor_interval = Duration::from_millis(100);
    c.max_deliveries = 3;
    c.poison_min_age = Duration::ZERO;
    c.handler_attempts = 2;
    c
}

#[tokio::test]
async fn every_entry_is_handled_once_in_order_and_acknowledged() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    for i in 0..500 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "g", "g-1"), rec.clone()).run(stop.clone()),
    );
    eventually(10, "500 handled", || async { rec.keys().len() == 500 }).await;
    // Entries published while it runs are handled too.
    bus.publish(&bus.envelope(alert(500))).await.unwrap();
    eventually(10, "501 handled", || async { rec.keys().len() == 501 }).await;
    let keys: Vec<usize> = rec.keys().iter().map(|k| k.parse().unwrap()).collect();
    assert_eq!(keys, (0..=500).collect::<Vec<_>>());
    eventually(5, "nothing pending", || async {
        let s = bus.stats(Stream::Alerts).await.unwrap();
        s.groups[0].pending == 0 && s.groups[0].lag == Some(0)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

/// Re-publishes every alert with a marked key, atomically with the ack.
struct Echo;

impl Handler for Echo {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let Event::AlertRaised(mut a) = d.envelope.event.clone() else {
            return Err(HandlerError::Permanent("not an alert".into()));
        };
        if a.key.starts_with("echo-") {
            return Ok(Outcome::done());
        }
        a.key = format!("echo-{}", a.key);
        let out = qt_events::Envelope::new(
            Event::AlertRaised(a),
            "echo",
            &qt_events::clock::SystemClock,
        )
        .caused_by(&d.envelope);
        Ok(Outcome::publish(vec![out]))
    }
}

#[tokio::test]
async fn handler_output_is_published_with_the_ack_and_keeps_the_correlation_id() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let first = bus.envelope(alert(7));
    bus.publish(&first).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "echo", "echo-1"), Echo).run(stop.clone()),
    );
    eventually(10, "echo published", || async {
        bus.last("t:alerts", 10).await.unwrap().len() == 2
    })
    .await;
    let entries = bus.last("t:alerts", 10).await.unwrap();
    let echoed = qt_events::Envelope::from_fields(entries[1].field_pairs()).unwrap();
    assert_eq!(echoed.corr, first.corr);
    let Event::AlertRaised(a) = echoed.event else {
        panic!("not an alert")
    };
    assert_eq!(a.key, "echo-7");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn garbage_unknown_types_and_future_versions_are_dead_lettered_and_the_consumer_goes_on() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let good = bus.envelope(alert(1));
    let mut fields: Vec<(String, Vec<u8>)> = good
        .to_fields()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    bus.append_raw("t:alerts", &[("garbage".into(), vec![0xff, 0x00, 0x13])])
        .await
        .unwrap();
    let set = |fields: &mut Vec<(String, Vec<u8>)>, k: &str, v: &[u8]| {
        fields.iter_mut().find(|(n, _)| n == k).unwrap().1 = v.to_vec();
    };
    let mut unknown = fields.clone();
    set(&mut unknown, "type", b"TeleportPosition");
    bus.append_raw("t:alerts", &unknown).await.unwrap();
    let mut future = fields.clone();
    set(&mut future, "v", b"99");
    bus.append_raw("t:alerts", &future).await.unwrap();
    set(&mut fields, "data", &[0xc1, 0xc1, 0xc1]);
    bus.append_raw("t:alerts", &fields).await.unwrap();
    bus.publish(&good).await.unwrap();

    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "g", "g-1"), rec.clone()).run(stop.clone()),
    );
    eventually(10, "the good entry handled", || async {
        rec.keys() == vec!["1".to_owned()]
    })
    .await;
    eventually(10, "four dead letters", || async {
        bus.last("t:dlq", 10).await.unwrap().len() == 4
    })
    .await;
    let reasons: Vec<String> = bus
        .last("t:dlq", 10)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let env = qt_events::Envelope::from_fields(e.field_pairs()).unwrap();
            let Event::DeadLettered(d) = env.event else {
                panic!("not a dead letter")
            };
            assert_eq!(d.stream, "t:alerts");
            assert_eq!(d.group, "g");
            assert!(!d.fields.is_empty());
            d.reason
        })
        .collect();
    assert!(reasons[0].contains("missing field"), "{reasons:?}");
    assert!(reasons[1].contains("unknown event type"), "{reasons:?}");
    assert!(reasons[2].contains("newer than"), "{reasons:?}");
    assert!(
        reasons[3].contains("undecodable AlertRaised"),
        "{reasons:?}"
    );
    eventually(5, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_failing_entry_is_retried_then_dead_lettered_while_the_rest_flow() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let rec = Recorder::default();
    rec.fail.lock().unwrap().push("2".into());
    rec.reject.lock().unwrap().push("3".into());
    for i in 1..=4 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "g", "g-1"), rec.clone()).run(stop.clone()),
    );
    eventually(10, "1 and 4 handled", || async {
        rec.keys() == vec!["1".to_owned(), "4".to_owned()]
    })
    .await;
    eventually(20, "two dead letters", || async {
        bus.last("t:dlq", 10).await.unwrap().len() == 2
    })
    .await;
    let letters: Vec<(String, u64)> = bus
        .last("t:dlq", 10)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let Event::DeadLettered(d) = qt_events::Envelope::from_fields(e.field_pairs())
                .unwrap()
                .event
            else {
                panic!()
            };
            (d.reason, d.deliveries)
        })
        .collect();
    // The permanent failure goes at once, on its first delivery.
    assert!(letters[0].0.contains("cannot take 3"), "{letters:?}");
    assert_eq!(letters[0].1, 1);
    // The transient one was delivered max_deliveries times first, and its last error is kept.
    assert!(
        letters[1].0.contains("failed 4 deliveries") && letters[1].0.contains("2 not now"),
        "{letters:?}"
    );
    eventually(5, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_retried_soon_while_newer_entries_are_handled() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let rec = Recorder::default();
    rec.fail.lock().unwrap().push("1".into());
    for i in 1..=3 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    // The janitor cannot be what brings it back: it claims only after a minute.
    let mut cfg = fast(Stream::Alerts, "g", "g-1");
    cfg.claim_min_idle = Duration::from_secs(60);
    cfg.handler_attempts = 1;
    cfg.retry_after = Duration::from_millis(300);
    cfg.max_deliveries = 10;
    let stop = CancellationToken::new();
    let task = tokio::spawn(Consumer::new(bus.clone(), cfg, rec.clone()).run(stop.clone()));
    eventually(5, "2 and 3 handled", || async {
        rec.keys() == vec!["2".to_owned(), "3".to_owned()]
    })
    .await;
    // Failing again on the first retries, the entry's retries back off (300, 600, 1200 ms);
    // once the cause is gone it is handled at the next one.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    rec.fail.lock().unwrap().clear();
    eventually(5, "1 handled after the others", || async {
        rec.keys() == vec!["2".to_owned(), "3".to_owned(), "1".to_owned()]
    })
    .await;
    let deliveries = rec.seen.lock().unwrap()[2].1;
    assert!(
        (2..=4).contains(&deliveries),
        "delivered {deliveries} times"
    );
    eventually(5, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_entry_deferred_by_its_handler_comes_back_when_asked_and_newer_entries_go_first() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let rec = Recorder::default();
    let due = Instant::now() + Duration::from_millis(800);
    rec.later.lock().unwrap().insert("1".into(), due);
    for i in 1..=3 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    // Neither the janitor nor the transient-failure retry can be what brings it back.
    let mut cfg = fast(Stream::Alerts, "g", "g-1");
    cfg.claim_min_idle = Duration::from_secs(60);
    cfg.retry_after = Duration::from_secs(60);
    let stop = CancellationToken::new();
    let task = tokio::spawn(Consumer::new(bus.clone(), cfg, rec.clone()).run(stop.clone()));
    eventually(5, "1 handled after the others", || async {
        rec.keys() == vec!["2".to_owned(), "3".to_owned(), "1".to_owned()]
    })
    .await;
    assert!(
        Instant::now() >= due,
        "handled before the time it asked for"
    );
    // Deferred once, read again at its time: no retry in place, no polling meanwhile.
    let deferrals = *rec.deferrals.lock().unwrap();
    assert!((1..=2).contains(&deferrals), "deferred {deferrals} times");
    eventually(5, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn entries_pending_on_an_instance_that_never_returns_are_claimed_by_another() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    for i in 0..50 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    bus.ensure_group(Stream::Alerts, "g").await.unwrap();
    // Instance "g-dead" reads everything and dies without acknowledging.
    let r = redis.raw(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "g-dead",
        "COUNT",
        "100",
        "STREAMS",
        "t:alerts",
        ">",
    ]);
    assert!(r.starts_with("*1"), "{r}");
    let before = bus.stats(Stream::Alerts).await.unwrap();
    assert_eq!(before.groups[0].pending, 50);

    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "g", "g-2"), rec.clone()).run(stop.clone()),
    );
    eventually(10, "all 50 claimed and handled", || async {
        rec.keys().len() == 50
    })
    .await;
    // Claimed entries count as a second delivery.
    assert!(rec.seen.lock().unwrap().iter().all(|(_, n)| *n == 2));
    eventually(5, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_after_the_entry_in_hand_and_acknowledges_only_what_was_handled() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    for i in 0..20 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    let rec = Recorder {
        delay: Some(Duration::from_millis(25)),
        ..Recorder::default()
    };
    let stop = CancellationToken::new();
    let mut cfg = fast(Stream::Alerts, "g", "g-1");
    cfg.batch_size = 20;
    let task = tokio::spawn(Consumer::new(bus.clone(), cfg, rec.clone()).run(stop.clone()));
    eventually(10, "the batch started", || async { !rec.keys().is_empty() }).await;
    stop.cancel();
    task.await.unwrap();
    let handled = rec.keys().len();
    assert!(
        (1..20).contains(&handled),
        "stopped inside the batch: {handled} of 20 handled"
    );
    let s = bus.stats(Stream::Alerts).await.unwrap();
    assert_eq!(
        s.groups[0].pending,
        (20 - handled) as u64,
        "what was handled is acknowledged, the rest stays pending"
    );

    // The next start handles the rest, each entry once.
    let stop = CancellationToken::new();
    let cfg = fast(Stream::Alerts, "g", "g-1");
    let task = tokio::spawn(Consumer::new(bus.clone(), cfg, rec.clone()).run(stop.clone()));
    eventually(10, "all 20 handled", || async { rec.keys().len() == 20 }).await;
    assert_eq!(rec.seen.lock().unwrap().len(), 20, "none handled twice");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_restarted_consumer_handles_its_own_pending_entries_first() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    for i in 0..10 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    bus.ensure_group(Stream::Alerts, "g").await.unwrap();
    // The same consumer name read 5 entries and crashed.
    redis.raw(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "g-1",
        "COUNT",
        "5",
        "STREAMS",
        "t:alerts",
        ">",
    ]);
    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let mut cfg = fast(Stream::Alerts, "g", "g-1");
    cfg.claim_min_idle = Duration::from_secs(3600);
    let task = tokio::spawn(Consumer::new(bus.clone(), cfg, rec.clone()).run(stop.clone()));
    eventually(10, "all 10 handled", || async { rec.keys().len() == 10 }).await;
    let seen = rec.seen.lock().unwrap().clone();
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert!(seen[..5].iter().all(|(_, n)| *n == 2), "{seen:?}");
    assert!(seen[5..].iter().all(|(_, n)| *n == 1), "{seen:?}");
    stop.cancel();
    task.await.unwrap();
}

/// Records what it handled and never returns on the alert whose key is `hang_on`.
#[derive(Clone)]
struct HangsOn {
    rec: Recorder,
    hang_on: String,
    hanging: Arc<AtomicBool>,
}

impl Handler for HangsOn {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        if key_of(d) == self.hang_on {
            self.hanging.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        self.rec.handle(d).await
    }
}

#[tokio::test]
async fn a_crash_loop_dead_letters_the_entry_that_crashes_it_and_none_behind_it() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    for i in 0..20 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    let rec = Recorder::default();
    let handler = HangsOn {
        rec: rec.clone(),
        hang_on: "3".into(),
        hanging: Default::default(),
    };
    let mut cfg = fast(Stream::Alerts, "g", "g-1");
    cfg.claim_min_idle = Duration::from_secs(3600);
    // The service dies (abort: nothing after the kill runs) on entry 3, again and again: the
    // first run read all 20 entries in one batch.
    let crashes = cfg.max_deliveries;
    for _ in 0..crashes {
        handler.hanging.store(false, Ordering::SeqCst);
        let task = tokio::spawn(
            Consumer::new(bus.clone(), cfg.clone(), handler.clone()).run(CancellationToken::new()),
        );
        eventually(10, "the handler reached entry 3", || async {
            handler.hanging.load(Ordering::SeqCst)
        })
        .await;
        task.abort();
        let _ = task.await;
    }
    // Entry 3 is now past max_deliveries. While it is younger than poison_min_age it is
    // handed to the handler again (a slow handler in a crash loop is not poison).
    let mut young = cfg.clone();
    young.poison_min_age = Duration::from_secs(3600);
    handler.hanging.store(false, Ordering::SeqCst);
    let task = tokio::spawn(
        Consumer::new(bus.clone(), young, handler.clone()).run(CancellationToken::new()),
    );
    eventually(10, "entry 3 handed over again", || async {
        handler.hanging.load(Ordering::SeqCst)
    })
    .await;
    task.abort();
    let _ = task.await;
    assert!(bus.last("t:dlq", 10).await.unwrap().is_empty());
    // Old enough now (min age zero): the next run dead-letters it and handles the rest.
    let stop = CancellationToken::new();
    let task =
        tokio::spawn(Consumer::new(bus.clone(), cfg.clone(), handler.clone()).run(stop.clone()));
    eventually(10, "every other entry handled", || async {
        let mut keys = rec.keys();
        keys.sort();
        keys.dedup();
        keys.len() == 19
    })
    .await;
    eventually(5, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    let letters = bus.last("t:dlq", 10).await.unwrap();
    assert_eq!(letters.len(), 1, "only the entry that crashed the service");
    let Event::DeadLettered(d) = qt_events::Envelope::from_fields(letters[0].field_pairs())
        .unwrap()
        .event
    else {
        panic!("not a dead letter")
    };
    assert_eq!(d.deliveries, cfg.max_deliveries + 2, "{d:?}");
    assert!(!rec.keys().contains(&"3".to_owned()));
    stop.cancel();
    task.await.unwrap();
}

/// Takes 20 ms per entry; notes each symbol's order, how many entries ran at once, and whether
/// two of one symbol ever did; answers each with an alert named after it.
#[derive(Clone, Default)]
struct Lanes {
    order: Arc<Mutex<Vec<String>>>,
    running: Arc<Mutex<Vec<String>>>,
    peak: Arc<Mutex<usize>>,
    same_symbol_at_once: Arc<AtomicBool>,
}

impl Handler for Lanes {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let Event::CancelOrder(c) = &d.envelope.event else {
            return Err(HandlerError::Permanent("not a cancel".into()));
        };
        {
            let mut running = self.running.lock().unwrap();
            if running.contains(&c.symbol) {
                self.same_symbol_at_once.store(true, Ordering::SeqCst);
            }
            running.push(c.symbol.clone());
            let mut peak = self.peak.lock().unwrap();
            *peak = (*peak).max(running.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        {
            let mut running = self.running.lock().unwrap();
            let at = running.iter().position(|s| s == &c.symbol).unwrap();
            running.remove(at);
        }
        self.order.lock().unwrap().push(c.intent_id.clone());
        let out = qt_events::Envelope::new(
            alert_keyed(&c.intent_id),
            "lanes",
            &qt_events::clock::SystemClock,
        );
        Ok(Outcome::publish(vec![out]))
    }
}

fn alert_keyed(key: &str) -> Event {
    let Event::AlertRaised(mut a) = alert(0) else {
        unreachable!()
    };
    a.key = key.to_owned();
    Event::AlertRaised(a)
}

/// Handles 3 symbols × 8 cancels with `lanes` lanes; returns the handler's notes and the keys of
/// the alerts it published, in the stream's order.
async fn run_laned(lanes: usize) -> (Lanes, Vec<String>) {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let mut published = Vec::new();
    for i in 0..8 {
        for sym in ["AAAUSDT", "BBBUSDT", "CCCUSDT"] {
            let id = format!("{sym}-{i}");
            let cancel = qt_events::CancelOrder {
                intent_id: id.clone(),
                symbol: sym.into(),
                client_order_id: format!("coid-{id}"),
                conditional: false,
            };
            bus.publish(&bus.envelope(Event::CancelOrder(cancel)))
                .await
                .unwrap();
            published.push(id);
        }
    }
    let h = Lanes::default();
    let stop = CancellationToken::new();
    let cfg = fast(Stream::Intents, "g", "g-1");
    let task = tokio::spawn(Consumer::laned(bus.clone(), cfg, h.clone(), lanes).run(stop.clone()));
    eventually(10, "24 handled and acknowledged", || async {
        let s = bus.stats(Stream::Intents).await.unwrap();
        h.order.lock().unwrap().len() == 24 && s.groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let key = bus.key(Stream::Alerts);
    let alerts: Vec<String> = bus
        .range(&key, "-", "+", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let env = qt_events::Envelope::from_fields(e.field_pairs()).unwrap();
            match env.event {
                Event::AlertRaised(a) => a.key,
                other => panic!("unexpected {other:?}"),
            }
        })
        .collect();
    assert_eq!(
        alerts, published,
        "outcomes are published in the stream's order"
    );
    (h, published)
}

#[tokio::test]
async fn lanes_handle_different_symbols_at_once_and_each_symbols_entries_in_order() {
    let (h, published) = run_laned(3).await;
    let peak = *h.peak.lock().unwrap();
    assert!(
        peak >= 2,
        "entries of different symbols ran at once (peak {peak})"
    );
    assert!(
        !h.same_symbol_at_once.load(Ordering::SeqCst),
        "two entries of one symbol never run at once"
    );
    let order = h.order.lock().unwrap().clone();
    for sym in ["AAAUSDT", "BBBUSDT", "CCCUSDT"] {
        let of = |v: &[String]| -> Vec<String> {
            v.iter().filter(|k| k.starts_with(sym)).cloned().collect()
        };
        assert_eq!(
            of(&order),
            of(&published),
            "{sym} handled in the stream's order"
        );
    }

    // One lane: one entry at a time, in the stream's order.
    let (h, published) = run_laned(1).await;
    assert_eq!(*h.peak.lock().unwrap(), 1);
    assert_eq!(*h.order.lock().unwrap(), published);
}
