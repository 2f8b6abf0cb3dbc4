//! OTLP trace export, end to end: the simulator, trading-bot, execution and exit-brain run as
//! processes with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver in this test
//! (axum on 127.0.0.1, `POST /v1/traces`, protobuf decoded with the OpenTelemetry proto types).
//! One candle that becomes a signal, an open intent, an order, a fill and a protection is one
//! trace: the candle's span in trading-bot is its root, the stream envelopes carry its
//! `traceparent`, execution's and exit-brain's handler spans continue it, and the simulator's
//! span for the order request continues it through the request's `traceparent` header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use qt_events::{Envelope, Event};
use qt_testkit::Fsync;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attrs: BTreeMap<String, String>,
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    /// Bodies that did not decode as an `ExportTraceServiceRequest`.
    undecodable: usize,
}

fn text(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                _ => String::new(),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

async fn traces(State(got): State<Arc<Mutex<Received>>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        got.lock().unwrap().undecodable += 1;
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut spans = Vec::new();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .map(|r| text(&r.attributes))
            .and_then(|a| a.get("service.name").cloned())
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                spans.push(Span {
                    service: service.clone(),
                    name: s.name.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    attrs: text(&s.attributes),
                });
            }
        }
    }
    got.lock().unwrap().spans.extend(spans);
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An OTLP/HTTP receiver on 127.0.0.1 that keeps every span it is sent.
struct Receiver {
    endpoint: String,
    got: Arc<Mutex<Received>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let got = Arc::new(Mutex::new(Received::default()));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v1/traces", post(traces))
            .with_state(got.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        Self {
            endpoint,
            got,
            _rt: rt,
        }
    }

    fn spans_of(&self, trace_id: &str) -> Vec<Span> {
        let got = self.got.lock().unwrap();
        got.spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

/// The trace id of an envelope's `traceparent` (`00-<trace>-<span>-<flags>`).
fn trace_of(env: &Envelope) -> Option<(String, String)> {
    let tp = env.traceparent.as_deref()?;
    let mut parts = tp.split('-');
    let (_, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    Some((trace.to_owned(), span.to_owned()))
}

#[test]
fn one_candle_to_fill_and_protection_is_one_trace_with_spans_exported_by_every_service() {
    let receiver = Receiver::start();
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let sim_args = common::Stack::paper_sim_args();
    let sim_args: Vec<&str> = sim_args.iter().map(String::as_str).collect();
    let mut stack = common::Stack::start_full(
        "otlp",
        &sim_args,
        &otel,
        &["trading-bot", "execution", "exit-brain"],
        &otel,
        Fsync::Always,
    );

    // Step until a position is opened and exit-brain has asked to protect it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (open, protect) = loop {
        assert!(
            Instant::now() < deadline,
            "no protected position\n{}",
            stack.logs()
        );
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
        let opened = stack
            .stream("positions")
            .into_iter()
            .find_map(|e| match e.event {
                Event::PositionOpened(p) => Some(p),
                _ => None,
            });
        let Some(opened) = opened else { continue };
        let intents = stack.stream("intents");
        let open = intents
            .iter()
            .find(|e| matches!(&e.event, Event::OpenPosition(i) if i.intent_id == opened.intent_id))
            .cloned()
            .expect("the open intent of the position");
        let protect = intents
            .iter()
            .find(|e| matches!(&e.event, Event::ProtectPosition(p) if p.symbol == opened.symbol))
            .cloned();
        if let Some(protect) = protect {
            break (open, protect);
        }
    };
    let Event::OpenPosition(intent) = &open.event else {
        unreachable!()
    };
    let (trace, bot_span) = trace_of(&open).expect("the open intent carries a traceparent");

    // The envelopes of the chain carry the one trace: the candle and signal it came from, the
    // entry's acceptance and fill, the position and exit-brain's protection.
    let candle = stack
        .stream("market")
        .into_iter()
        .find(|e| e.corr == open.corr && matches!(e.event, Event::CandleClosed(_)))
        .expect("the candle the intent was caused by");
    assert_eq!(
        trace_of(&candle).map(|t| t.0),
        Some(trace.clone()),
        "candle"
    );
    let signal = stack
        .stream("signals")
        .into_iter()
        .find(|e| e.corr == open.corr)
        .expect("the signal of the candle");
    assert_eq!(
        trace_of(&signal).map(|t| t.0),
        Some(trace.clone()),
        "signal"
    );
    let fill = stack
        .stream("orders")
        .into_iter()
        .find(|e| matches!(&e.event, Event::OrderFilled(f) if f.intent_id == intent.intent_id))
        .expect("the entry's fill");
    assert_eq!(trace_of(&fill).map(|t| t.0), Some(trace.clone()), "fill");
    assert_eq!(
        trace_of(&protect).map(|t| t.0),
        Some(trace.clone()),
        "protection"
    );

    // Every service exported spans of that trace, linked as the flow went.
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected: BTreeSet<&str> = ["trading-bot", "execution", "exit-brain", "sim-exchange"]
        .into_iter()
        .collect();
    let spans = loop {
        let spans = receiver.spans_of(&trace);
        let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
        let order_request = spans.iter().any(|s| {
            s.service == "sim-exchange"
                && s.attrs.get("path").map(String::as_str) == Some("/fapi/v1/order")
        });
        if services.is_superset(&expected) && order_request {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace}: spans from {services:?} (want {expected:?}, the order request from \
             the simulator: {order_request})\n{spans:#?}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let by_id: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();

    // The root is trading-bot's span of the candle, the one the intent was published from.
    let root = by_id
        .get(bot_span.as_str())
        .expect("the span the intent was published from was exported");
    assert_eq!(
        (root.service.as_str(), root.name.as_str()),
        ("trading-bot", "candle")
    );
    assert!(
        root.parent_span_id.is_empty(),
        "the candle starts the trace"
    );
    // execution's handler of the intent is its child.
    assert!(
        spans.iter().any(|s| s.service == "execution"
            && s.parent_span_id == bot_span
            && s.attrs.get("event_type").map(String::as_str) == Some("OpenPosition")),
        "execution's handler of the open intent continues the candle's span\n{spans:#?}"
    );
    // The simulator's order request hangs under one of execution's spans.
    let order = spans
        .iter()
        .find(|s| {
            s.service == "sim-exchange"
                && s.attrs.get("path").map(String::as_str) == Some("/fapi/v1/order")
        })
        .unwrap();
    assert_eq!(
        by_id
            .get(order.parent_span_id.as_str())
            .map(|p| p.service.as_str()),
        Some("execution"),
        "the order request's parent is an execution span\n{spans:#?}"
    );
    // exit-brain handled the position fact within the trace.
    assert!(
        spans.iter().any(|s| s.service == "exit-brain"
            && s.attrs.get("event_type").map(String::as_str) == Some("PositionOpened")),
        "exit-brain's handler of the position\n{spans:#?}"
    );
    assert_eq!(receiver.got.lock().unwrap().undecodable, 0);
    stack.stop();
}
