//! Every alert rule fires on its condition, stays quiet just below it, and is throttled; alerts
//! arriving on `qt:alerts` are delivered to a generic webhook, Discord and Telegram (a local
//! HTTP server stands in for all three) once per (service, rule, key) per window.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use portfolio_intelligence::Settings;
use portfolio_intelligence::alerts::{AlertEngine, GroupSample, Observations, ServiceHealth};
use portfolio_intelligence::book::{Drift, ModelInfo};
use portfolio_intelligence::metrics::ClosedTrade;
use portfolio_intelligence::settings::{AlertSettings, Secret};
use qt_events::{AlertRaised, Event, Severity};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;

const NOW: i64 = 1_767_312_000_000;
const MIN: i64 = 60_000;

fn trade(i: usize, win: bool) -> ClosedTrade {
    ClosedTrade {
        position_id: format!("p{i}"),
        symbol: "BTCUSDT".into(),
        side: "LONG".into(),
        quantity: dec!(1),
        entry_price: dec!(100),
        exit_price: dec!(100),
        realized_pnl: dec!(0),
        fees: dec!(0),
        net_pnl: if win { dec!(5) } else { dec!(-5) },
        model_version: "v1".into(),
        opened_at: 0,
        closed_at: i as i64,
        reason: "stop".into(),
    }
}

/// `n` trades of which `wins` are wins.
fn trades(n: usize, wins: usize) -> Vec<ClosedTrade> {
    (0..n).map(|i| trade(i, i < wins)).collect()
}

struct World {
    model: ModelInfo,
    trades: Vec<ClosedTrade>,
    errors: Vec<i64>,
    rate_limits: Vec<(i64, String)>,
    services: Vec<ServiceHealth>,
    drift: Vec<Drift>,
    open_positions: u32,
    daily_pnl: Decimal,
    dead_letters: u64,
}

impl World {
    /// Every condition true.
    fn firing() -> Self {
        Self {
            model: ModelInfo {
                model: "gbdt".into(),
                model_version: "v7".into(),
                since: NOW - 3 * 86_400_000 - 10 * MIN,
                last_signal_at: None,
            },
            // 20 trades, 10 wins: 50% < 55%.
            trades: trades(20, 10),
            errors: (0..11).map(|i| NOW - i * 1000).collect(),
            rate_limits: vec![(NOW, "http 429".into())],
            services: vec![ServiceHealth {
                name: "execution".into(),
                ready: false,
                detail: "unreachable".into(),
            }],
            drift: vec![Drift {
                symbol: "ETHUSDT".into(),
                believed: dec!(0),
                exchange: dec!(-4),
            }],
            open_positions: 9,
            // 80% of 150 = 120.
            daily_pnl: dec!(-120),
            dead_letters: 2,
        }
    }

    /// Every condition just short of firing.
    fn quiet() -> Self {
        Self {
            model: ModelInfo {
                model: "gbdt".into(),
                model_version: "v7".into(),
                since: NOW - 3 * 86_400_000 + 10 * MIN,
                last_signal_at: None,
            },
            // 11 of the last 20 = 55%: not under 55%. Older losses do not count.
            trades: {
                let mut t = trades(5, 0);
                t.extend(trades(20, 11));
                t
            },
            // 10 in the last minute (one older): not more than 10.
            errors: (0..10)
                .map(|i| NOW - i * 1000)
                .chain([NOW - 61_000])
                .collect(),
            rate_limits: vec![],
            services: vec![ServiceHealth {
                name: "execution".into(),
                ready: true,
                detail: "ready".into(),
            }],
            drift: vec![],
            open_positions: 8,
            daily_pnl: dec!(-119.99),
            dead_letters: 0,
        }
    }

    fn obs<'a>(&'a self, now: i64, groups: &'a [GroupSample]) -> Observations<'a> {
        Observations {
            now,
            open_positions: self.open_positions,
            max_positions: 8,
            daily_pnl: self.daily_pnl,
            max_daily_loss: dec!(150),
            model: Some(&self.model),
            trades: &self.trades,
            exchange_errors: &self.errors,
            rate_limits: &self.rate_limits,
            groups,
            dead_letters: self.dead_letters,
            services: &self.services,
            drift: &self.drift,
            ..Observations::default()
        }
    }
}

fn group(pending: u64, lag: u64) -> Vec<GroupSample> {
    vec![GroupSample {
        stream: "intents".into(),
        group: "execution".into(),
        pending,
        lag,
    }]
}

fn rules(alerts: &[AlertRaised]) -> BTreeSet<String> {
    alerts.iter().map(|a| a.rule.clone()).collect()
}

const ALL_RULES: [&str; 10] = [
    "consumer_lag_growing",
    "daily_loss_near_limit",
    "dead_letters",
    "exchange_errors",
    "model_stale",
    "position_count_over_max",
    "position_drift",
    "rate_limited",
    "service_not_ready",
    "win_rate_low",
];

#[test]
fn every_rule_fires_then_is_throttled_then_fires_again_after_the_window() {
    let mut e = AlertEngine::new(AlertSettings {
        throttle: Duration::from_secs(600),
        ..AlertSettings::default()
    });
    let mut w = World::firing();
    // Lag grows over three samples: only the third one makes it a trend.
    let a1 = e.evaluate(&w.obs(NOW - 2 * MIN, &group(1, 10)));
    assert!(!rules(&a1).contains("consumer_lag_growing"));
    let a2 = e.evaluate(&w.obs(NOW - MIN, &group(2, 20)));
    assert!(!rules(&a2).contains("consumer_lag_growing"));
    assert!(
        a2.is_empty(),
        "the others are throttled after the first sample: {a2:?}"
    );
    let a3 = e.evaluate(&w.obs(NOW, &group(3, 30)));
    assert_eq!(
        rules(&a3),
        BTreeSet::from(["consumer_lag_growing".to_owned()])
    );
    let all: BTreeSet<String> = rules(&a1).union(&rules(&a3)).cloned().collect();
    assert_eq!(
        all,
        ALL_RULES
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    );
    let drift = a1.iter().find(|a| a.rule == "position_drift").unwrap();
    assert_eq!(drift.key, "ETHUSDT");
    assert_eq!(drift.severity, Severity::Critical);
    assert_eq!(drift.details["exchange"], "-4");
    let stale = a1.iter().find(|a| a.rule == "model_stale").unwrap();
    assert_eq!(stale.key, "v7");

    // Still true a few minutes later: nothing new, all counted as suppressed.
    let before = e.suppressed;
    w.errors = (0..11).map(|i| NOW + 5 * MIN - i * 1000).collect();
    let a4 = e.evaluate(&w.obs(NOW + 5 * MIN, &group(4, 40)));
    assert!(a4.is_empty(), "{a4:?}");
    assert_eq!(e.suppressed - before, 10);

    // After the window every rule fires again.
    w.errors = (0..11).map(|i| NOW + 11 * MIN - i * 1000).collect();
    let a5 = e.evaluate(&w.obs(NOW + 11 * MIN, &group(5, 50)));
    assert_eq!(rules(&a5).len(), 10, "{:?}", rules(&a5));
}

#[test]
fn no_rule_fires_just_below_its_threshold() {
    let mut e = AlertEngine::new(AlertSettings::default());
    let w = World::quiet();
    for (i, g) in [group(5, 5), group(5, 6), group(5, 4), group(5, 5)]
        .iter()
        .enumerate()
    {
        let a = e.evaluate(&w.obs(NOW + i as i64 * MIN, g));
        assert!(a.is_empty(), "{a:?}");
    }
    // A different key is a different alert: a second drifting symbol is not throttled by the first.
    let mut w = World::quiet();
    w.drift = vec![Drift {
        symbol: "BTCUSDT".into(),
        believed: dec!(1),
        exchange: dec!(0),
    }];
    assert_eq!(rules(&e.evaluate(&w.obs(NOW, &[]))).len(), 1);
    w.drift[0].symbol = "SOLUSDT".into();
    assert_eq!(e.evaluate(&w.obs(NOW, &[])).len(), 1);
}

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

async fn stand_in() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(s): State<Seen>, body: axum::Json<Value>| async move {
                s.lock().unwrap().push(("webhook".into(), body.0));
            }),
        )
        .route(
            "/discord",
            post(|State(s): State<Seen>, body: axum::Json<Value>| async move {
                s.lock().unwrap().push(("discord".into(), body.0));
            }),
        )
        .route(
            "/{bot}/sendMessage",
            post(
                |State(s): State<Seen>, Path(bot): Path<String>, body: axum::Json<Value>| async move {
                    s.lock().unwrap().push((format!("telegram:{bot}"), body.0));
                },
            ),
        )
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, seen)
}

fn alert(rule: &str, key: &str) -> AlertRaised {
    AlertRaised {
        rule: rule.into(),
        key: key.into(),
        severity: Severity::Critical,
        message: format!("{rule} happened"),
        service: "execution".into(),
        details: Default::default(),
    }
}

#[tokio::test]
async fn alerts_are_delivered_to_every_channel_once_per_window() {
    let f = common::fixture();
    let (base, seen) = stand_in().await;
    let mut s = Settings::default();
    s.alerts.throttle = Duration::from_secs(600);
    s.alerts.webhook_url = Secret::new(format!("{base}/hook"));
    s.alerts.discord_webhook_url = Secret::new(format!("{base}/discord"));
    s.alerts.telegram_bot_token = Secret::new("123:abc");
    s.alerts.telegram_chat_id = "42".into();
    s.alerts.telegram_api_base = base.clone();
    let sh = f.shared(s).await;

    let first = f.envelope(Event::AlertRaised(alert("position_mismatch", "BTCUSDT")));
    sh.apply(&first).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
    // The same entry redelivered, and the same (rule, key) again a minute later: no delivery.
    sh.apply(&first).await.unwrap();
    f.clock.advance(MIN);
    let again = f.envelope(Event::AlertRaised(alert("position_mismatch", "BTCUSDT")));
    sh.apply(&again).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
    // Another key goes out at once; the first key again after the window.
    let other = f.envelope(Event::AlertRaised(alert("position_mismatch", "ETHUSDT")));
    sh.apply(&other).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 6);
    f.clock.advance(10 * MIN);
    let later = f.envelope(Event::AlertRaised(alert("position_mismatch", "BTCUSDT")));
    sh.apply(&later).await.unwrap();

    // An old alert read late (a replay after a first start) is listed, not delivered.
    let mut old = f.envelope(Event::AlertRaised(alert("unknown_order", "BTCUSDT")));
    old.ts -= 11 * MIN;
    sh.apply(&old).await.unwrap();

    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 9);
    let (ch, body) = &got[0];
    assert_eq!(ch, "webhook");
    assert_eq!(body["rule"], "position_mismatch");
    assert_eq!(body["key"], "BTCUSDT");
    assert_eq!(body["severity"], "CRITICAL");
    assert_eq!(got[1].0, "discord");
    assert!(
        got[1].1["content"]
            .as_str()
            .unwrap()
            .contains("position_mismatch (BTCUSDT)")
    );
    assert_eq!(got[2].0, "telegram:bot123:abc");
    assert_eq!(got[2].1["chat_id"], "42");
    // The dashboard's list holds each entry once, newest last, with whether it was delivered.
    let st = sh.state();
    assert_eq!(st.alerts.len(), 5);
    assert_eq!(
        st.alerts.iter().map(|a| a.delivered).collect::<Vec<_>>(),
        [true, false, true, true, false]
    );
}

#[tokio::test]
async fn alerts_raised_by_the_rules_reach_the_alerts_stream() {
    let f = common::fixture();
    let mut s = Settings::default();
    s.limits.max_concurrent_positions = 0;
    let sh = f.shared(s).await;
    // One open position with a maximum of zero.
    let opened = qt_events::PositionOpened {
        position_id: "p1".into(),
        symbol: "BTCUSDT".into(),
        side: qt_events::PositionSide::Long,
        quantity: dec!(1),
        entry_price: dec!(100),
        leverage: 1,
        intent_id: "i1".into(),
        opened_at: common::DAY,
        signal: None,
    };
    sh.apply(&f.envelope(Event::PositionOpened(opened)))
        .await
        .unwrap();
    let raised = sh.evaluate_alerts().await.unwrap();
    assert_eq!(
        rules(&raised),
        BTreeSet::from(["position_count_over_max".to_owned()])
    );
    assert!(sh.evaluate_alerts().await.unwrap().is_empty(), "throttled");
    let on_stream = f.events(qt_events::Stream::Alerts).await;
    assert_eq!(on_stream.len(), 1);
    match &on_stream[0].event {
        Event::AlertRaised(a) => {
            assert_eq!(a.rule, "position_count_over_max");
            assert_eq!(a.service, "portfolio-intelligence");
        }
        other => panic!("unexpected {other:?}"),
    }
}
