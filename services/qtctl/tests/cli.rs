//! qtctl as a person runs it: the real binary against a real redis-server.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use qt_events::clock::SystemClock;
use qt_events::{DeadLettered, Envelope, Event, RawField};
use qt_testkit::RedisServer;

fn qtctl(redis: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(args)
        .env("QT_REDIS_URL", redis)
        .env("QT_STREAM_PREFIX", "t:")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Appends an envelope to a stream key, binary-safe, without going through qtctl.
fn xadd(redis: &RedisServer, key: &str, env: &Envelope) {
    let fields = env.to_fields();
    let mut args: Vec<&[u8]> = vec![b"XADD", key.as_bytes(), b"*"];
    for (k, v) in &fields {
        args.push(k.as_bytes());
        args.push(v);
    }
    assert!(redis.raw_bytes(&args).starts_with('$'));
}

fn dead_letter(n: &str) -> Envelope {
    Envelope::new(
        Event::DeadLettered(DeadLettered {
            stream: "t:intents".into(),
            entry_id: format!("1-{n}"),
            group: "execution".into(),
            consumer: "execution-0".into(),
            reason: format!("undecodable {n}"),
            deliveries: 1,
            fields: vec![RawField {
                name: "junk".into(),
                value: n.as_bytes().to_vec(),
            }],
        }),
        "test",
        &SystemClock,
    )
}

#[test]
fn streams_lists_every_stream_and_fails_cleanly_without_redis() {
    let redis = RedisServer::start();
    let o = qtctl(&redis.url(), &["streams"]);
    assert!(o.status.success(), "{o:?}");
    for s in ["t:market", "t:intents", "t:dlq", "t:context"] {
        assert!(stdout(&o).contains(s), "{}", stdout(&o));
    }
    let o = qtctl(&redis.url(), &["--json", "streams"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), qt_events::Stream::ALL.len());
    let o = qtctl("redis://127.0.0.1:1", &["streams"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unreachable"));
}

#[test]
fn kill_switch_sends_a_command_that_tail_decodes() {
    let redis = RedisServer::start();
    let o = qtctl(&redis.url(), &["kill-switch", "on", "--reason", "test"]);
    assert!(o.status.success(), "{o:?}");
    let o = qtctl(&redis.url(), &["tail", "control", "-n", "5"]);
    let line: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(line["type"], "SetKillSwitch");
    assert_eq!(line["data"]["enabled"], true);
    assert_eq!(line["data"]["reason"], "test");
    let o = qtctl(&redis.url(), &["tail", "nonsense"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn resume_sends_an_audited_command_and_needs_a_reason() {
    let redis = RedisServer::start();
    let o = qtctl(&redis.url(), &["resume"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = qtctl(&redis.url(), &["resume", "--reason", " "]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(redis.raw(&["XLEN", "t:control"]).starts_with(":0"));
    let o = qtctl(
        &redis.url(),
        &["--json", "resume", "--reason", "losses reviewed"],
    );
    assert!(o.status.success(), "{o:?}");
    let sent: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sent["type"], "ResumeTrading");
    let o = qtctl(&redis.url(), &["tail", "control", "-n", "5"]);
    let line: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(line["type"], "ResumeTrading");
    assert_eq!(line["id"], sent["event_id"]);
    assert_eq!(line["data"]["reason"], "losses reviewed");
    assert!(
        line["data"]["requested_by"]
            .as_str()
            .unwrap()
            .starts_with("qtctl@")
    );
}

#[test]
fn dead_letters_are_listed_replayed_onto_their_stream_and_purged() {
    let redis = RedisServer::start();
    xadd(&redis, "t:dlq", &dead_letter("a"));
    xadd(&redis, "t:dlq", &dead_letter("b"));
    let o = qtctl(&redis.url(), &["dlq", "list"]);
    let listing = stdout(&o);
    assert!(
        listing.contains("undecodable a") && listing.contains("undecodable b"),
        "{listing}"
    );
    let first_id = listing
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let o = qtctl(&redis.url(), &["dlq", "replay", &first_id]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        redis
            .raw(&["XRANGE", "t:intents", "-", "+"])
            .contains("junk")
    );
    assert!(redis.raw(&["XLEN", "t:dlq"]).starts_with(":1"));
    let o = qtctl(&redis.url(), &["dlq", "purge", "--all"]);
    assert!(stdout(&o).contains("purged 1"), "{o:?}");
    assert!(redis.raw(&["XLEN", "t:dlq"]).starts_with(":0"));
    let o = qtctl(&redis.url(), &["dlq", "replay", "9-9"]);
    assert_eq!(o.status.code(), Some(1));
}

fn signal(model: &str, version: &str) -> Envelope {
    Envelope::new(
        Event::SignalGenerated(qt_events::SignalGenerated {
            symbol: "BTCUSDT".into(),
            action: qt_events::SignalAction::Hold,
            confidence: 1.0,
            model: model.into(),
            model_version: version.into(),
            candle_open_time: 0,
            features: Default::default(),
            expected_return: None,
        }),
        "trading-bot",
        &SystemClock,
    )
}

#[test]
fn status_names_the_model_trading_now_and_says_when_no_model_is_validated() {
    let redis = RedisServer::start();
    let status = || {
        let o = qtctl(&redis.url(), &["status", "--services", ""]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
    };
    assert!(status().contains("model: no signal yet"), "{}", status());
    xadd(&redis, "t:signals", &signal("none", "none"));
    let t = status();
    assert!(
        t.contains("model: none: no validated model, trading nothing"),
        "{t}"
    );
    xadd(&redis, "t:signals", &signal("gbdt", "gbdt-7"));
    assert!(status().contains("model: gbdt gbdt-7"), "{}", status());
    let o = qtctl(&redis.url(), &["--json", "status", "--services", ""]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["model"]["model_version"], "gbdt-7");
}
