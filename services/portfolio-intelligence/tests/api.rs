//! The HTTP API: JSON endpoints, the WebSocket, and the control endpoints behind the bearer
//! token (401 without or with a wrong one, 400 with a message on bad input, 503 when no token
//! is configured), which publish their command on `qt:control`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use portfolio_intelligence::settings::Secret;
use portfolio_intelligence::{Settings, Shared, api};
use qt_events::api::{
    AlertsResponse, ApiErrorBody, Dashboard, MetricsResponse, PortfolioResponse, PositionsResponse,
    StreamsResponse, TradesResponse,
};
use qt_events::{Event, PositionOpened, PositionSide, Stream};
use rust_decimal_macros::dec;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-token";

async fn serve(sh: Arc<Shared>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, api::router(sh)).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

fn settings(token: &str) -> Settings {
    Settings {
        api_token: Secret::new(token),
        ..Settings::default()
    }
}

fn opened() -> PositionOpened {
    PositionOpened {
        position_id: "p1".into(),
        symbol: "ETHUSDT".into(),
        side: PositionSide::Short,
        quantity: dec!(2),
        entry_price: dec!(2000),
        leverage: 3,
        intent_id: "i1".into(),
        opened_at: common::DAY,
        signal: None,
    }
}

async fn post(http: &reqwest::Client, url: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_endpoints_need_the_bearer_token_and_a_valid_body() {
    let f = common::fixture();
    let addr = serve(f.shared(settings(TOKEN)).await).await;
    let http = reqwest::Client::new();
    let ks = format!("http://{addr}/api/control/kill-switch");
    let bearer = format!("Bearer {TOKEN}");

    let (code, body) = post(&http, &ks, None, r#"{"enabled":true}"#).await;
    assert_eq!(code, 401);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(
        post(&http, &ks, Some("Bearer nope"), r#"{"enabled":true}"#)
            .await
            .0,
        401
    );
    assert_eq!(
        post(&http, &ks, Some(TOKEN), r#"{"enabled":true}"#).await.0,
        401
    );

    for bad in [
        "",
        "{",
        r#"{"enabled":"yes"}"#,
        r#"{"reason":"x"}"#,
        r#"{"enabled":true,"extra":1}"#,
    ] {
        let (code, body) = post(&http, &ks, Some(&bearer), bad).await;
        assert_eq!(code, 400, "{bad:?}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{bad:?}");
    }
    assert!(
        f.events(Stream::Control).await.is_empty(),
        "nothing published on refusals"
    );

    let (code, ks_body) = post(
        &http,
        &ks,
        Some(&bearer),
        r#"{"enabled":true,"reason":"night"}"#,
    )
    .await;
    assert_eq!(code, 202);
    assert_eq!(ks_body["type"], "SetKillSwitch");
    let (code, _) = post(
        &http,
        &format!("http://{addr}/api/control/close-all"),
        Some(&bearer),
        "",
    )
    .await;
    assert_eq!(code, 202);
    let (code, _) = post(
        &http,
        &format!("http://{addr}/api/control/retrain"),
        Some(&bearer),
        r#"{"reason":"drift"}"#,
    )
    .await;
    assert_eq!(code, 202);
    assert_eq!(
        post(
            &http,
            &format!("http://{addr}/api/control/retrain"),
            None,
            ""
        )
        .await
        .0,
        401
    );

    let control = f.events(Stream::Control).await;
    assert_eq!(control.len(), 3);
    match &control[0].event {
        Event::SetKillSwitch(k) => {
            assert!(k.enabled);
            assert_eq!(k.reason, "night");
            assert_eq!(k.command_id, control[0].id);
            assert_eq!(ks_body["command_id"], json!(k.command_id));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(control[1].event, Event::CloseAll(_)));
    match &control[2].event {
        Event::RetrainNow(r) => assert_eq!(r.reason, "drift"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn resume_needs_the_token_and_a_reason_and_publishes_resume_trading() {
    let f = common::fixture();
    let sh = f.shared(settings(TOKEN)).await;
    let addr = serve(sh.clone()).await;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/control/resume");
    let bearer = format!("Bearer {TOKEN}");

    assert_eq!(post(&http, &url, None, r#"{"reason":"x"}"#).await.0, 401);
    assert_eq!(
        post(&http, &url, Some("Bearer nope"), r#"{"reason":"x"}"#)
            .await
            .0,
        401
    );
    for bad in [
        "",
        "{}",
        r#"{"reason":"  "}"#,
        r#"{"reason":"x","extra":1}"#,
    ] {
        let (code, body) = post(&http, &url, Some(&bearer), bad).await;
        assert_eq!(code, 400, "{bad:?}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{bad:?}");
    }
    assert!(
        f.events(Stream::Control).await.is_empty(),
        "nothing published on refusals"
    );

    let (code, body) = post(
        &http,
        &url,
        Some(&bearer),
        r#"{"reason":"losses reviewed"}"#,
    )
    .await;
    assert_eq!(code, 202);
    assert_eq!(body["type"], "ResumeTrading");
    let control = f.events(Stream::Control).await;
    assert_eq!(control.len(), 1);
    match &control[0].event {
        Event::ResumeTrading(r) => {
            assert_eq!(r.reason, "losses reviewed");
            assert_eq!(r.command_id, control[0].id);
            assert_eq!(body["command_id"], json!(r.command_id));
            assert_eq!(r.requested_by, "portfolio-intelligence-api");
        }
        other => panic!("unexpected {other:?}"),
    }

    // The dashboard's state shows the breaker: tripped from execution's alert, then cleared by
    // the resume it sees on the control stream.
    assert_eq!(api::dashboard_state(&sh).drawdown_breaker, None);
    f.clock.advance(1_000);
    let trip = f.envelope(Event::AlertRaised(qt_events::AlertRaised {
        rule: qt_events::alert_rules::DRAWDOWN_BREAKER_TRIPPED.into(),
        key: String::new(),
        severity: qt_events::Severity::Critical,
        message: "drawdown breaker tripped".into(),
        service: "execution".into(),
        details: Default::default(),
    }));
    sh.apply(&trip).await.unwrap();
    let breaker = api::dashboard_state(&sh).drawdown_breaker.unwrap();
    assert!(breaker.tripped);
    assert_eq!(breaker.since, trip.ts);
    f.clock.advance(1_000);
    sh.apply(&f.envelope(control[0].event.clone()))
        .await
        .unwrap();
    assert!(!api::dashboard_state(&sh).drawdown_breaker.unwrap().tripped);
    // An older trip alert read late (the streams are read apart) does not undo the resume.
    sh.apply(&trip.clone().with_id("older-copy".into()))
        .await
        .unwrap();
    assert!(!api::dashboard_state(&sh).drawdown_breaker.unwrap().tripped);
}

#[tokio::test]
async fn control_endpoints_are_disabled_without_a_configured_token() {
    let f = common::fixture();
    let addr = serve(f.shared(settings("")).await).await;
    let http = reqwest::Client::new();
    let (code, body) = post(
        &http,
        &format!("http://{addr}/api/control/close-all"),
        Some("Bearer "),
        "",
    )
    .await;
    assert_eq!(code, 503);
    assert!(body["error"].as_str().unwrap().contains("api_token"));
    assert!(f.events(Stream::Control).await.is_empty());
}

#[tokio::test]
async fn control_requests_past_the_per_minute_limit_get_429_with_retry_after_until_it_passes() {
    let f = common::fixture();
    let addr = serve(
        f.shared(Settings {
            control_per_minute: 3,
            ..settings(TOKEN)
        })
        .await,
    )
    .await;
    let http = reqwest::Client::new();
    let ks = format!("http://{addr}/api/control/kill-switch");
    let bearer = format!("Bearer {TOKEN}");
    // Wrong tokens count too: guessing one is as limited as flooding a command.
    assert_eq!(post(&http, &ks, Some("Bearer a"), "{}").await.0, 401);
    assert_eq!(post(&http, &ks, Some("Bearer b"), "{}").await.0, 401);
    let ok = r#"{"enabled":true,"reason":"test"}"#;
    assert_eq!(post(&http, &ks, Some(&bearer), ok).await.0, 202);
    f.clock.advance(20_000);
    let r = http
        .post(&ks)
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "40");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("3 control requests"),
        "{body}"
    );
    assert_eq!(
        f.events(Stream::Control).await.len(),
        1,
        "the refused one published nothing"
    );
    // A minute after the first ones, requests are answered again.
    f.clock.advance(40_001);
    assert_eq!(post(&http, &ks, Some(&bearer), ok).await.0, 202);
}

#[tokio::test]
async fn json_endpoints_and_the_websocket_show_the_portfolio() {
    let f = common::fixture();
    let sh = f.shared(settings(TOKEN)).await;
    let addr = serve(sh.clone()).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("http://{addr}{path}");
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.text().await.unwrap()
        }
    };

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let first: Dashboard = match ws.next().await.unwrap().unwrap() {
        tokio_tungstenite::tungstenite::Message::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("unexpected {other:?}"),
    };
    assert!(first.positions.is_empty());
    assert_eq!(first.snapshot.equity, dec!(10000));

    sh.apply(&f.envelope(Event::PositionOpened(opened())))
        .await
        .unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let tokio_tungstenite::tungstenite::Message::Text(t) =
                ws.next().await.unwrap().unwrap()
            {
                let v: Dashboard = serde_json::from_str(&t).unwrap();
                if !v.positions.is_empty() {
                    return v;
                }
            }
        }
    })
    .await
    .expect("the WebSocket pushed the new position");
    assert_eq!(pushed.positions[0].position.symbol, "ETHUSDT");
    assert_eq!(pushed.limits.positions.value, 1);

    let p: PositionsResponse = typed(&get("/api/positions").await);
    assert_eq!(p.positions[0].position.side, "SHORT");
    assert_eq!(p.positions[0].notional, dec!(4000));
    let pf: PortfolioResponse = typed(&get("/api/portfolio").await);
    assert_eq!(pf.snapshot.short_exposure, dec!(4000));
    assert_eq!(pf.snapshot.open_positions, 1);
    let m: MetricsResponse = typed(&get("/api/metrics").await);
    assert_eq!(m.totals.trades, 0);
    let t: TradesResponse = typed(&get("/api/trades?limit=5").await);
    assert!(t.trades.is_empty());
    let a: AlertsResponse = typed(&get("/api/alerts").await);
    assert!(a.alerts.is_empty());
    f.bus
        .ensure_group(Stream::Intents, "execution")
        .await
        .unwrap();
    let s: StreamsResponse = typed(&get("/api/streams").await);
    let intents = s.streams.iter().find(|x| x.stream == "intents").unwrap();
    assert_eq!(intents.groups[0].group, "execution");
    let html = http
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<title>Quantum Trader</title>") && html.contains("new WebSocket"));
}

/// A served document read into its `qt_events::api` type (what qtctl and the dashboard's tests
/// do), and that type written back, give the same JSON: nothing is lost, renamed or added.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(served: &str) -> T {
    let value: Value = serde_json::from_str(served).unwrap();
    let t: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
    assert_eq!(serde_json::to_value(&t).unwrap(), value, "round trip");
    t
}

/// Every document of the API, with every kind of entry in it (positions, closed trades, fills,
/// rejections, alerts, the breaker, the model, streams, drift), round-trips through the types.
#[tokio::test]
async fn every_served_document_round_trips_through_the_api_types() {
    let f = common::fixture();
    let sh = f.shared(settings(TOKEN)).await;
    for (i, event) in qt_events::samples::all().into_iter().enumerate() {
        f.clock.advance(1_000);
        let env = f.envelope(event).with_id(format!("sample-{i}"));
        sh.apply(&env).await.unwrap();
    }
    sh.apply(&f.envelope(Event::PositionOpened(opened())))
        .await
        .unwrap();
    let trip = Event::AlertRaised(qt_events::AlertRaised {
        rule: qt_events::alert_rules::DRAWDOWN_BREAKER_TRIPPED.into(),
        key: String::new(),
        severity: qt_events::Severity::Critical,
        message: "drawdown breaker tripped".into(),
        service: "execution".into(),
        details: Default::default(),
    });
    sh.apply(&f.envelope(trip)).await.unwrap();
    f.bus
        .ensure_group(Stream::Intents, "execution")
        .await
        .unwrap();
    let addr = serve(sh).await;
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        let url = format!("http://{addr}{path}");
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
            r.text().await.unwrap()
        }
    };
    let d: Dashboard = typed(&get("/api/dashboard").await);
    assert!(!d.positions.is_empty() && !d.trades.is_empty() && !d.alerts.is_empty());
    assert!(!d.fills.is_empty() && !d.rejections.is_empty(), "{d:?}");
    assert!(d.model.is_some() && d.drawdown_breaker.is_some());
    let p: PositionsResponse = typed(&get("/api/positions").await);
    assert!(!p.positions.is_empty());
    let t: TradesResponse = typed(&get("/api/trades?limit=3").await);
    assert!(!t.trades.is_empty());
    let _: PortfolioResponse = typed(&get("/api/portfolio").await);
    let m: MetricsResponse = typed(&get("/api/metrics").await);
    assert!(!m.by_model_version.is_empty());
    let a: AlertsResponse = typed(&get("/api/alerts").await);
    assert!(!a.alerts.is_empty());
    let s: StreamsResponse = typed(&get("/api/streams").await);
    assert!(!s.streams.is_empty());
    let d: Dashboard = typed(&get("/api/dashboard").await);
    assert!(
        !d.decisions.is_empty() && d.kill_switch_state.is_some(),
        "{d:?}"
    );
    let _: qt_events::api::ModelsView = typed(&get("/api/models").await);
    let r = http
        .post(format!("http://{addr}/api/control/retrain"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let _: ApiErrorBody = typed(&r.text().await.unwrap());
}

#[tokio::test]
async fn closing_one_position_needs_the_token_and_an_open_position_and_publishes_a_close_intent() {
    let f = common::fixture();
    let sh = f.shared(settings(TOKEN)).await;
    sh.apply(&f.envelope(Event::PositionOpened(opened())))
        .await
        .unwrap();
    let addr = serve(sh).await;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/control/close-position");
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        post(&http, &url, None, r#"{"symbol":"ETHUSDT"}"#).await.0,
        401
    );
    for (bad, code) in [
        ("{}", 400),
        (r#"{"symbol":"ETHUSDT","x":1}"#, 400),
        (r#"{"symbol":"BTCUSDT"}"#, 404),
    ] {
        let (got, body) = post(&http, &url, Some(&bearer), bad).await;
        assert_eq!(got, code, "{bad}: {body}");
    }
    assert!(
        f.events(Stream::Intents).await.is_empty(),
        "nothing on refusals"
    );
    let (code, body) = post(
        &http,
        &url,
        Some(&bearer),
        r#"{"symbol":"ethusdt","reason":"news"}"#,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["type"], "ClosePosition");
    let intents = f.events(Stream::Intents).await;
    let [env] = intents.as_slice() else {
        panic!("{intents:?}")
    };
    let Event::ClosePosition(c) = &env.event else {
        panic!("{env:?}")
    };
    assert_eq!(c.symbol, "ETHUSDT");
    assert_eq!(c.reason, "operator via the API: news");
    assert!(c.intent_id.starts_with("pi-close-ETHUSDT-"));
}

#[tokio::test]
async fn a_rollback_needs_a_reason_a_kept_version_that_is_not_the_champion_and_its_artifact() {
    let f = common::fixture();
    let dir = tempfile::tempdir().unwrap();
    let art = |v: &str| dir.path().join(format!("{v}.json")).display().to_string();
    std::fs::write(art("m-1"), "{}").unwrap();
    let registry = json!({"champion": "m-2", "models": [
        {"version": "m-3", "kind": "gbdt", "status": "rejected", "artifact_uri": art("m-3"), "sha256": "c3"},
        {"version": "m-2", "kind": "gbdt", "status": "champion", "artifact_uri": art("m-2"), "sha256": "c2"},
        {"version": "m-1", "kind": "gbdt", "status": "retired", "artifact_uri": art("m-1"), "sha256": "c1"}]});
    std::fs::write(dir.path().join("registry.json"), registry.to_string()).unwrap();
    let sh = f
        .shared(Settings {
            models_dir: dir.path().to_path_buf(),
            ..settings(TOKEN)
        })
        .await;
    let addr = serve(sh).await;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/control/rollback");
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        post(&http, &url, None, r#"{"version":"m-1","reason":"x"}"#)
            .await
            .0,
        401
    );
    for (bad, code) in [
        (r#"{"version":"m-1"}"#, 400),
        (r#"{"version":"m-1","reason":" "}"#, 400),
        (r#"{"version":"m-9","reason":"x"}"#, 404),
        (r#"{"version":"m-2","reason":"x"}"#, 409),
        (r#"{"version":"m-3","reason":"x"}"#, 409),
    ] {
        let (got, body) = post(&http, &url, Some(&bearer), bad).await;
        assert_eq!(got, code, "{bad}: {body}");
    }
    assert!(
        f.events(Stream::Models).await.is_empty(),
        "nothing on refusals"
    );
    let (code, body) = post(
        &http,
        &url,
        Some(&bearer),
        r#"{"version":"m-1","reason":"m-2 misbehaves"}"#,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let models = f.events(Stream::Models).await;
    let [env] = models.as_slice() else {
        panic!("{models:?}")
    };
    let Event::ModelRolledBack(r) = &env.event else {
        panic!("{env:?}")
    };
    assert_eq!(r.from_version, "m-2");
    assert_eq!(
        (
            r.artifact.model_version.as_str(),
            r.artifact.sha256.as_str(),
            r.artifact.artifact_uri.clone()
        ),
        ("m-1", "c1", art("m-1"))
    );
    assert_eq!(r.reason, "operator via the API: m-2 misbehaves");
    assert_eq!(r.rolled_back_at, qt_events::clock::Clock::now_ms(&*f.clock));
}
