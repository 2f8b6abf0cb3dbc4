//! What the dashboard says about the state and each decision, without a browser: the kill
//! switch is never unknown once the control stream was read, the daily-loss pause shows its end
//! and goes away after it, each symbol's decision gets its outcome whatever order the streams
//! deliver the facts in, and the default services are `scripts/run.sh`'s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use portfolio_intelligence::api::dashboard_state;
use portfolio_intelligence::{Settings, Shared};
use qt_events::clock::Clock;
use qt_events::{
    Envelope, Event, OrderKind, OrderRejected, PositionOpened, PositionSide, RejectReason,
    SetKillSwitch, SignalAction, SignalGenerated, SignalRef,
};
use rust_decimal_macros::dec;

fn quiet() -> Settings {
    // No service polled: these tests are about the streams.
    Settings {
        services: BTreeMap::new(),
        ..Settings::default()
    }
}

#[tokio::test]
async fn the_kill_switch_is_off_with_its_reason_when_the_control_stream_never_set_it() {
    let f = common::fixture();
    let sh = f.shared(quiet()).await;
    assert!(
        dashboard_state(&sh).kill_switch_state.is_none(),
        "not read yet"
    );
    sh.restore_control().await.unwrap();
    let d = dashboard_state(&sh);
    let k = d.kill_switch_state.unwrap();
    assert!(!k.enabled);
    assert_eq!(k.since, None);
    assert!(k.reason.contains("never set"), "{}", k.reason);
    assert_eq!(d.kill_switch, Some(false));
}

#[tokio::test]
async fn the_kill_switch_shows_who_set_it_when_and_why_and_a_newer_command_wins() {
    let f = common::fixture();
    let set = |enabled: bool, reason: &str| {
        f.envelope(Event::SetKillSwitch(SetKillSwitch {
            command_id: format!("k-{reason}"),
            enabled,
            reason: reason.into(),
            requested_by: "qtctl".into(),
        }))
    };
    let on = set(true, "exchange incident");
    f.bus.publish(&on).await.unwrap();
    let sh = f.shared(quiet()).await;
    sh.restore_control().await.unwrap();
    let k = dashboard_state(&sh).kill_switch_state.unwrap();
    assert!(k.enabled);
    assert_eq!(
        (k.since, k.reason.as_str(), k.requested_by.as_str()),
        (Some(on.ts), "exchange incident", "qtctl")
    );
    // An older command read late does not flip it back.
    let mut stale = set(false, "stale");
    stale.ts = on.ts - 1;
    sh.apply(&stale).await.unwrap();
    assert!(dashboard_state(&sh).kill_switch_state.unwrap().enabled);
    f.clock.advance(1_000);
    sh.apply(&set(false, "incident over")).await.unwrap();
    let k = dashboard_state(&sh).kill_switch_state.unwrap();
    assert!(!k.enabled && k.reason == "incident over");
}

fn refusal(
    f: &common::Fixture,
    sym: &str,
    intent: &str,
    reason: RejectReason,
    until: Option<i64>,
) -> Envelope {
    f.envelope(Event::OrderRejected(OrderRejected {
        intent_id: intent.into(),
        client_order_id: None,
        symbol: sym.into(),
        reason,
        message: format!("{reason:?} for the test"),
        exchange_code: None,
        until_ms: until,
    }))
}

#[tokio::test]
async fn the_daily_loss_pause_shows_its_end_and_is_gone_after_it() {
    let f = common::fixture();
    let now = f.clock.now_ms();
    let end = now + 3_600_000;
    // Published before the start: read back from the orders stream.
    f.bus
        .publish(&refusal(
            &f,
            "BTCUSDT",
            "i1",
            RejectReason::DailyLossPause,
            Some(end),
        ))
        .await
        .unwrap();
    let sh = f.shared(quiet()).await;
    sh.restore_control().await.unwrap();
    let p = dashboard_state(&sh).pause.expect("the pause is shown");
    assert_eq!(
        (p.reason.as_str(), p.until),
        ("DAILY_LOSS_PAUSE", Some(end))
    );
    f.clock.set(end - 1);
    assert!(dashboard_state(&sh).pause.is_some());
    f.clock.set(end);
    assert!(dashboard_state(&sh).pause.is_none(), "over at its end");
}

#[tokio::test]
async fn a_drawdown_breaker_refusal_trips_the_breaker_with_its_message() {
    let f = common::fixture();
    let sh = f.shared(quiet()).await;
    sh.apply(&refusal(
        &f,
        "ETHUSDT",
        "i2",
        RejectReason::DrawdownBreaker,
        None,
    ))
    .await
    .unwrap();
    let b = dashboard_state(&sh).drawdown_breaker.unwrap();
    assert!(
        b.tripped && b.message.contains("DrawdownBreaker for the test"),
        "{b:?}"
    );
}

async fn signal(
    f: &common::Fixture,
    sh: &Arc<Shared>,
    sym: &str,
    action: SignalAction,
    model: &str,
) -> Envelope {
    let env = f.envelope(Event::SignalGenerated(SignalGenerated {
        symbol: sym.into(),
        action,
        confidence: 0.6,
        model: model.into(),
        model_version: format!("{model}-1"),
        candle_open_time: f.clock.now_ms() - 300_000,
        features: BTreeMap::new(),
        expected_return: None,
    }));
    sh.apply(&env).await.unwrap();
    env
}

fn intent(f: &common::Fixture, sym: &str, signal_id: &str) -> Envelope {
    f.envelope(Event::OpenPosition(qt_events::OpenPosition {
        intent_id: format!("tb-open-{sym}"),
        symbol: sym.into(),
        side: PositionSide::Long,
        quantity: dec!(1),
        order_type: OrderKind::Market,
        limit_price: None,
        leverage: 3,
        reference_price: dec!(10),
        signal: Some(SignalRef {
            signal_id: signal_id.into(),
            model: "gbdt".into(),
            model_version: "gbdt-1".into(),
            confidence: 0.6,
            features: BTreeMap::new(),
            exits: None,
        }),
    }))
}

fn outcome(sh: &Shared, sym: &str) -> (String, String) {
    let d = dashboard_state(sh);
    let x = d.decisions.iter().find(|x| x.symbol == sym).unwrap();
    (x.outcome.clone(), x.why.clone())
}

#[tokio::test]
async fn each_decision_gets_its_outcome_whatever_order_the_facts_arrive_in() {
    let f = common::fixture();
    let sh = f.shared(quiet()).await;
    sh.restore_control().await.unwrap();

    // HOLD: no edge; from model none: no validated model.
    signal(&f, &sh, "SOLUSDT", SignalAction::Hold, "gbdt").await;
    assert_eq!(outcome(&sh, "SOLUSDT").0, "no_edge");
    signal(&f, &sh, "XRPUSDT", SignalAction::Hold, "none").await;
    assert_eq!(outcome(&sh, "XRPUSDT").0, "no_model");

    // An entry without an intent: trading-bot's own gate.
    let ada = signal(&f, &sh, "ADAUSDT", SignalAction::Buy, "gbdt").await;
    assert_eq!(outcome(&sh, "ADAUSDT").0, "no_intent");
    // Its intent: pending; the refusal: refused with the code and message.
    sh.apply(&intent(&f, "ADAUSDT", &ada.id)).await.unwrap();
    assert_eq!(outcome(&sh, "ADAUSDT").0, "pending");
    sh.apply(&refusal(
        &f,
        "ADAUSDT",
        "tb-open-ADAUSDT",
        RejectReason::Cooldown,
        None,
    ))
    .await
    .unwrap();
    let (o, why) = outcome(&sh, "ADAUSDT");
    assert_eq!(o, "refused");
    assert!(why.contains("COOLDOWN: Cooldown for the test"), "{why}");

    // The position opened read before the intent, and the intent before the signal.
    let opened = f.envelope(Event::PositionOpened(PositionOpened {
        position_id: "p".into(),
        symbol: "BNBUSDT".into(),
        side: PositionSide::Long,
        quantity: dec!(1),
        entry_price: dec!(600),
        leverage: 3,
        intent_id: "tb-open-BNBUSDT".into(),
        opened_at: f.clock.now_ms(),
        signal: None,
    }));
    sh.apply(&opened).await.unwrap();
    let bnb = f.envelope(Event::SignalGenerated(SignalGenerated {
        symbol: "BNBUSDT".into(),
        action: SignalAction::Buy,
        confidence: 0.7,
        model: "gbdt".into(),
        model_version: "gbdt-1".into(),
        candle_open_time: f.clock.now_ms() - 300_000,
        features: BTreeMap::new(),
        expected_return: None,
    }));
    sh.apply(&intent(&f, "BNBUSDT", &bnb.id)).await.unwrap();
    sh.apply(&bnb).await.unwrap();
    assert_eq!(outcome(&sh, "BNBUSDT").0, "traded");

    // A later signal on BNB with the position open and no intent: position open.
    f.clock.advance(300_000);
    signal(&f, &sh, "BNBUSDT", SignalAction::Buy, "gbdt").await;
    assert_eq!(outcome(&sh, "BNBUSDT").0, "position_open");

    // A pause, then the kill switch, take precedence over "no intent".
    let eth = signal(&f, &sh, "ETHUSDT", SignalAction::Sell, "gbdt").await;
    let _ = eth;
    sh.apply(&refusal(
        &f,
        "LTCUSDT",
        "x",
        RejectReason::DailyLossPause,
        Some(f.clock.now_ms() + 60_000),
    ))
    .await
    .unwrap();
    let (o, why) = outcome(&sh, "ETHUSDT");
    assert_eq!(o, "paused");
    assert!(why.contains("DAILY_LOSS_PAUSE until"), "{why}");
    f.clock.advance(1_000);
    sh.apply(&f.envelope(Event::SetKillSwitch(SetKillSwitch {
        command_id: "k".into(),
        enabled: true,
        reason: "r".into(),
        requested_by: "t".into(),
    })))
    .await
    .unwrap();
    assert_eq!(outcome(&sh, "ETHUSDT").0, "kill_switch");
}

#[tokio::test]
async fn decisions_are_read_back_from_the_streams_at_start() {
    let f = common::fixture();
    let sig = f.envelope(Event::SignalGenerated(SignalGenerated {
        symbol: "DOGEUSDT".into(),
        action: SignalAction::Sell,
        confidence: 0.6,
        model: "gbdt".into(),
        model_version: "gbdt-1".into(),
        candle_open_time: f.clock.now_ms() - 300_000,
        features: BTreeMap::new(),
        expected_return: None,
    }));
    for env in [
        sig.clone(),
        intent(&f, "DOGEUSDT", &sig.id),
        refusal(
            &f,
            "DOGEUSDT",
            "tb-open-DOGEUSDT",
            RejectReason::MaxGrossExposure,
            None,
        ),
    ] {
        f.bus.publish(&env).await.unwrap();
    }
    let sh = f.shared(quiet()).await;
    assert!(dashboard_state(&sh).decisions.is_empty());
    sh.restore_control().await.unwrap();
    let (o, why) = outcome(&sh, "DOGEUSDT");
    assert_eq!(o, "refused");
    assert!(why.contains("MAX_GROSS_EXPOSURE"), "{why}");
}

#[test]
fn the_default_services_are_run_sh_s_ports_and_an_empty_url_leaves_one_out() {
    let s = Settings::default();
    let polled = s.polled_services();
    assert_eq!(
        polled,
        BTreeMap::from(
            [
                ("trading-bot", 8081),
                ("execution", 8082),
                ("exit-brain", 8083),
                ("portfolio-intelligence", 8084),
                ("clm", 8085),
            ]
            .map(|(n, p)| (n.to_owned(), format!("http://127.0.0.1:{p}")))
        )
    );
    let mut s = Settings::default();
    s.services
        .insert("trading_bot".into(), "http://trading-bot:8081".into());
    s.services.insert("clm".into(), " ".into());
    let polled = s.polled_services();
    assert_eq!(polled["trading-bot"], "http://trading-bot:8081");
    assert!(!polled.contains_key("clm"));
}

#[tokio::test]
async fn the_kill_switch_is_remembered_after_the_control_stream_lost_the_command() {
    let f = common::fixture();
    let sh = f.shared(quiet()).await;
    // Applied (as consumed), then gone from the stream (trimmed after 7 days): never on it here.
    let on = f.envelope(Event::SetKillSwitch(SetKillSwitch {
        command_id: "k1".into(),
        enabled: true,
        reason: "exchange incident".into(),
        requested_by: "qtctl".into(),
    }));
    sh.apply(&on).await.unwrap();
    drop(sh);
    let sh = f.shared(quiet()).await;
    sh.restore_control().await.unwrap();
    let k = dashboard_state(&sh).kill_switch_state.unwrap();
    assert!(k.enabled, "{k:?}");
    assert_eq!(
        (k.since, k.reason.as_str()),
        (Some(on.ts), "exchange incident")
    );
    assert_eq!(dashboard_state(&sh).kill_switch, Some(true));
}
