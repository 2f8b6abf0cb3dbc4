//! The wire contract holds: old payloads decode, readers tolerate new fields, schemas are fresh.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use qt_events::clock::ManualClock;
use qt_events::{EVENT_TYPES, Envelope, Event};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn every_golden_fixture_still_decodes() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let (ty, rest) = name.split_once(".v").unwrap();
        let v: u16 = rest.trim_end_matches(".msgpack").parse().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let event = Event::decode(ty, v, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let current = Event::lookup(ty).unwrap().version;
        if v == current {
            assert_eq!(
                Some(event),
                qt_events::samples::sample(ty),
                "{name} no longer decodes to its sample"
            );
        }
        n += 1;
    }
    assert!(n >= EVENT_TYPES.len());
}

#[test]
fn every_event_type_has_a_fixture_at_its_current_version() {
    for t in EVENT_TYPES {
        let p = fixtures().join(format!("{}.v{}.msgpack", t.name, t.version));
        assert!(
            p.is_file(),
            "missing {} (run `cargo xtask fixtures`)",
            p.display()
        );
    }
}

#[test]
fn a_payload_with_an_unknown_extra_field_decodes() {
    for event in qt_events::samples::all() {
        let bytes = event.encode_data();
        let mut value: rmpv::Value = rmpv::decode::read_value(&mut bytes.as_slice()).unwrap();
        let rmpv::Value::Map(ref mut m) = value else {
            panic!("{} is not a map", event.type_name())
        };
        m.push(("added_in_v9".into(), rmpv::Value::from(42)));
        m.push((
            "nested_new".into(),
            rmpv::Value::Map(vec![("x".into(), rmpv::Value::from("y"))]),
        ));
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &value).unwrap();
        let decoded = Event::decode(event.type_name(), event.version(), &out).unwrap();
        assert_eq!(decoded, event);
    }
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto-schemas");
    let generated = qt_events::schema::json_schemas();
    for (name, text) in &generated {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == *text,
            "proto-schemas/{name} is stale: run `cargo xtask schemas`"
        );
    }
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files,
        generated.len(),
        "proto-schemas/ has files for types that no longer exist"
    );
}

#[test]
fn envelopes_round_trip_through_stream_fields() {
    let clock = ManualClock::new(1_700_000_000_000);
    for event in qt_events::samples::all() {
        let env = Envelope::new(event, "test", &clock).with_traceparent(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ));
        let fields = env.to_fields();
        let back = Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
            .unwrap();
        assert_eq!(back, env);
        assert_eq!(back.ts, 1_700_000_000_000);
    }
}

#[test]
fn fields_are_readable_in_redis_cli() {
    let clock = ManualClock::new(5);
    let env = Envelope::new(
        qt_events::samples::sample("CandleClosed").unwrap(),
        "trading-bot",
        &clock,
    );
    let fields = env.to_fields();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    assert_eq!(get("type").as_deref(), Some("CandleClosed"));
    assert_eq!(get("v").as_deref(), Some("1"));
    assert_eq!(get("ts").as_deref(), Some("5"));
    assert_eq!(get("src").as_deref(), Some("trading-bot"));
    assert_eq!(get("sym").as_deref(), Some("BTCUSDT"));
}

proptest! {
    #[test]
    fn arbitrary_fields_never_panic_the_decoder(
        fields in proptest::collection::vec((prop_oneof![Just("id".to_owned()), Just("type".to_owned()), Just("v".to_owned()), Just("ts".to_owned()), Just("data".to_owned()), Just("src".to_owned()), ".*"], proptest::collection::vec(any::<u8>(), 0..64)), 0..10),
        ty in prop_oneof![Just("OpenPosition".to_owned()), Just("OrderFilled".to_owned()), ".*"],
    ) {
        let mut fields = fields;
        fields.push(("type".into(), ty.into_bytes()));
        let _ = Envelope::from_fields(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())));
    }
}

#[test]
fn reject_reasons_added_later_decode_and_ones_this_build_does_not_know_decode_as_other() {
    use qt_events::{OrderRejected, RejectReason};
    let Some(Event::OrderRejected(sample)) = qt_events::samples::sample("OrderRejected") else {
        panic!("no OrderRejected sample")
    };
    let with = |reason: rmpv::Value| {
        let bytes = Event::OrderRejected(sample.clone()).encode_data();
        let mut value: rmpv::Value = rmpv::decode::read_value(&mut bytes.as_slice()).unwrap();
        let rmpv::Value::Map(ref mut m) = value else {
            panic!("OrderRejected is not a map")
        };
        for (k, v) in m.iter_mut() {
            if k.as_str() == Some("reason") {
                *v = reason.clone();
            }
        }
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &value).unwrap();
        match Event::decode("OrderRejected", 1, &out).unwrap() {
            Event::OrderRejected(OrderRejected { reason, .. }) => reason,
            other => panic!("decoded as {other:?}"),
        }
    };
    assert_eq!(
        with(rmpv::Value::from("DRAWDOWN_BREAKER")),
        RejectReason::DrawdownBreaker
    );
    assert_eq!(
        with(rmpv::Value::from("A_CODE_FROM_THE_FUTURE")),
        RejectReason::Other
    );
}

#[test]
fn close_and_reduce_intents_from_before_hedge_mode_name_no_side() {
    for ty in ["ClosePosition", "ReducePosition"] {
        let bytes = std::fs::read(fixtures().join(format!("{ty}.v1.msgpack"))).unwrap();
        let side = match Event::decode(ty, 1, &bytes).unwrap() {
            Event::ClosePosition(c) => c.position_side,
            Event::ReducePosition(r) => r.position_side,
            other => panic!("{ty} decoded as {}", other.type_name()),
        };
        assert_eq!(side, None, "{ty} v1 must mean the symbol's one position");
        // The current version names the side and keeps it through the wire.
        let sample = qt_events::samples::sample(ty).unwrap();
        let again = Event::decode(ty, sample.version(), &sample.encode_data()).unwrap();
        assert_eq!(again, sample);
        let named = match again {
            Event::ClosePosition(c) => c.position_side,
            Event::ReducePosition(r) => r.position_side,
            _ => None,
        };
        assert_eq!(named, Some(qt_events::PositionSide::Long));
    }
}
