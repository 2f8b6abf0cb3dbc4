//! The dashboard in headless Chromium: the page served by the service connects to the WebSocket
//! and shows the equity curve, positions with PnL, limit gauges, trades, rejections, the model,
//! service health and stream lag, alerts, and the drawdown breaker with its resume button; each
//! symbol's decision explained, the kill switch and pauses with their reasons, clm's model
//! cards and schedule, checked against the API; the controls publish only after their confirm
//! step; the page fits a phone. Screenshots are kept under the test's output
//! (`$CARGO_TARGET_TMPDIR/dashboard*.png`, one per panel in `dashboard-panels/`). Skips with a
//! message when `chromium` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdp;
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use portfolio_intelligence::{Settings, Shared, api};
use qt_events::clock::Clock;
use qt_events::{
    AlertRaised, CandleClosed, Event, MarkPriceUpdated, ModelArtifactRef, ModelDeployed,
    OrderRejected, PositionClosed, PositionOpened, PositionSide, RejectReason, Severity, SignalRef,
    Stream,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

async fn run_chromium(bin: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium finished within 90 s")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sig(v: &str) -> Option<SignalRef> {
    Some(SignalRef {
        signal_id: "s".into(),
        model: "gbdt".into(),
        model_version: v.into(),
        confidence: 0.71,
        features: BTreeMap::new(),
        exits: None,
    })
}

/// A portfolio with history: three closed trades, two open positions, a rejection, a model,
/// an alert, and snapshots for the curve.
async fn populate(f: &common::Fixture, sh: &Arc<Shared>) {
    let apply = |e: Event| {
        let env = f.envelope(e);
        let sh = sh.clone();
        async move { sh.apply(&env).await.unwrap() }
    };
    apply(Event::ModelDeployed(ModelDeployed {
        artifact: ModelArtifactRef {
            model_version: "gbdt-20260101-7".into(),
            model: "gbdt".into(),
            artifact_uri: "file:///models/7".into(),
            sha256: String::new(),
        },
        metrics: BTreeMap::new(),
        deployed_at: f.clock.now_ms() - 5 * 3_600_000,
    }))
    .await;
    sh.snapshot().await.unwrap();
    let closes: [(&str, Decimal); 3] = [
        ("SOLUSDT", dec!(42.5)),
        ("XRPUSDT", dec!(-18.2)),
        ("BNBUSDT", dec!(63.1)),
    ];
    for (i, (sym, net)) in closes.into_iter().enumerate() {
        f.clock.advance(600_000);
        apply(Event::PositionClosed(PositionClosed {
            position_id: format!("{sym}-1"),
            symbol: sym.into(),
            side: PositionSide::Long,
            max_quantity: dec!(10),
            entry_price: dec!(100),
            exit_price: dec!(100) + net / dec!(10),
            realized_pnl: net + dec!(1),
            fees: dec!(1),
            net_pnl: net,
            opened_at: f.clock.now_ms() - 3_000_000,
            closed_at: f.clock.now_ms(),
            reason: if i == 1 {
                "stop".into()
            } else {
                "take_profit".into()
            },
            signal: sig("gbdt-20260101-7"),
        }))
        .await;
        sh.snapshot().await.unwrap();
    }
    for (sym, side, qty, entry, mark) in [
        (
            "BTCUSDT",
            PositionSide::Long,
            dec!(0.05),
            dec!(40000),
            dec!(40650),
        ),
        (
            "ETHUSDT",
            PositionSide::Short,
            dec!(1.5),
            dec!(2000),
            dec!(2024),
        ),
    ] {
        apply(Event::PositionOpened(PositionOpened {
            position_id: format!("{sym}-2"),
            symbol: sym.into(),
            side,
            quantity: qty,
            entry_price: entry,
            leverage: 5,
            intent_id: "i".into(),
            opened_at: f.clock.now_ms(),
            signal: sig("gbdt-20260101-7"),
        }))
        .await;
        apply(Event::MarkPriceUpdated(MarkPriceUpdated {
            symbol: sym.into(),
            mark_price: mark,
            index_price: None,
            funding_rate: None,
            event_time: f.clock.now_ms(),
        }))
        .await;
    }
    apply(Event::CandleClosed(CandleClosed {
        symbol: "ADAUSDT".into(),
        interval: "5m".into(),
        open_time: 0,
        close_time: 1,
        open: dec!(1),
        high: dec!(1),
        low: dec!(1),
        close: dec!(1),
        volume: dec!(1),
        quote_volume: dec!(1),
        trades: 1,
    }))
    .await;
    apply(Event::OrderRejected(OrderRejected {
        intent_id: "i9".into(),
        client_order_id: None,
        symbol: "DOGEUSDT".into(),
        reason: RejectReason::MaxGrossExposure,
        message: "gross exposure would exceed 20000".into(),
        exchange_code: None,
        until_ms: None,
    }))
    .await;
    apply(Event::AlertRaised(AlertRaised {
        rule: "position_mismatch".into(),
        key: "XRPUSDT".into(),
        severity: Severity::Critical,
        message: "exchange holds 10 XRPUSDT, records none".into(),
        service: "execution".into(),
        details: BTreeMap::new(),
    }))
    .await;
    apply(Event::AlertRaised(AlertRaised {
        rule: qt_events::alert_rules::DRAWDOWN_BREAKER_TRIPPED.into(),
        key: String::new(),
        severity: Severity::Critical,
        message: "drawdown breaker tripped: equity 9000 is 10% below its peak 10000".into(),
        service: "execution".into(),
        details: BTreeMap::new(),
    }))
    .await;
    f.clock.advance(600_000);
    sh.snapshot().await.unwrap();
    f.bus
        .ensure_group(Stream::Intents, "execution")
        .await
        .unwrap();
    sh.observe().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_portfolio_live_in_headless_chromium() {
    let Some(bin) = chromium() else {
        qt_testkit::skip_unless_ci("chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let f = common::fixture();
    // One service that is ready (this one's own router answers /health/ready below) and one
    // that is unreachable.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let settings = Settings {
        services: BTreeMap::from([
            (
                "portfolio-intelligence".to_owned(),
                format!("http://{addr}"),
            ),
            ("exit-brain".to_owned(), format!("http://{dead}")),
        ]),
        ..Settings::default()
    };
    let sh = f.shared(settings).await;
    let app = api::router(sh.clone()).route(
        "/health/ready",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"ready": true})) }),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    populate(&f, &sh).await;

    let url = format!("http://{addr}/");
    let dom = run_chromium(
        &bin,
        &[
            "--virtual-time-budget=5000".into(),
            "--dump-dom".into(),
            url.clone(),
        ],
    )
    .await;
    assert!(
        dom.contains("id=\"conn\" class=\"ok\">connected"),
        "live over the WebSocket:\n{dom}"
    );
    for shown in [
        "BTCUSDT",
        "ETHUSDT", // positions
        "32.50",   // BTC PnL: (40650 - 40000) * 0.05
        "-36.00",  // ETH PnL: (2000 - 2024) * 1.5
        "SOLUSDT",
        "take_profit",
        "stop", // trades
        "DOGEUSDT",
        "MAX_GROSS_EXPOSURE", // rejections
        "gbdt-20260101-7",
        "age 5.7 h", // model: deployed 5 h before four 10-minute steps
        "portfolio-intelligence ready",
        "exit-brain NOT READY",
        "intents",           // health, streams
        "position_mismatch", // alerts
        "data-gauge=\"Positions\"",
        "2 / 8",
        "data-gauge=\"Daily loss\"",
        "data-gauge=\"Long share\"",
        "curve-path", // equity curve
        "id=\"breaker\" class=\"pill bad\" title=\"drawdown breaker tripped",
        ">TRIPPED</span>",
        "class=\"hot\">Resume after drawdown breaker</button>", // the breaker, its button lit
    ] {
        assert!(dom.contains(shown), "the page shows {shown:?}:\n{dom}");
    }
    // Equity: 10000 + 42.5 - 18.2 + 63.1 + 32.5 - 36 = 10083.90.
    assert!(dom.contains("10,083.90"), "equity in the header:\n{dom}");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &bin,
        &[
            "--virtual-time-budget=5000".into(),
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".into(),
            url,
        ],
    )
    .await;
    let meta = std::fs::metadata(&shot).expect("a screenshot was written");
    assert!(meta.len() > 10_000, "a real picture, not an empty page");
    println!("screenshot: {}", shot.display());

    // The same page at a phone's width.
    let phone = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-phone.png");
    let _ = std::fs::remove_file(&phone);
    run_chromium(
        &bin,
        &[
            "--virtual-time-budget=5000".into(),
            format!("--screenshot={}", phone.display()),
            "--window-size=390,1600".into(),
            format!("http://{addr}/"),
        ],
    )
    .await;
    assert!(std::fs::metadata(&phone).expect("a phone screenshot").len() > 10_000);
    println!("phone screenshot: {}", phone.display());
}

/// clm's registry in `dir` as clm writes it: the champion gbdt-7 (promoted), gbdt-8 refused by
/// the real gate (it loses to the champion and to its baselines), and an older gbdt-6, each
/// with an artifact file.
fn write_registry(dir: &Path, now: i64) {
    use clm::gate::{Candidate, GateConfig, WalkForwardCard, decide};
    let candidate = |v: &str, net: &str, dd: f64, trades: u64| -> Candidate {
        serde_json::from_value(serde_json::json!({
            "version": v, "net_pnl": net, "max_drawdown_pct": dd, "trades": trades,
            "win_rate": 0.52, "signal_mix": {"buy": 0.1, "sell": 0.1, "hold": 0.8, "count": 900}
        }))
        .unwrap()
    };
    let wf = |ret: f64, dsr: f64| -> WalkForwardCard {
        serde_json::from_value(serde_json::json!({
            "folds": 4, "out_of_sample_start_ms": now - 20 * 86_400_000i64,
            "out_of_sample_end_ms": now - 86_400_000, "strategy_return": ret,
            "strategy_trades": 120, "strategy_max_drawdown_pct": 0.061, "strategy_sharpe": 0.8,
            "momentum_return": 0.012, "buy_and_hold_return": 0.034,
            "random_median_return": -0.004, "random_p95_return": 0.021, "random_paths": 200,
            "dsr": dsr, "trials": 23, "exit_plans": 6, "verdict": "see checks"
        }))
        .unwrap()
    };
    let cfg = GateConfig::default();
    let champ = candidate("gbdt-7", "84.20", 0.031, 40);
    let champ_wf = wf(0.052, 0.97);
    let champ_decision = decide(&cfg, &champ, None, Some(&Ok(champ_wf.clone())));
    assert!(
        champ_decision.promote,
        "the champion's card passes the gate"
    );
    let chall = candidate("gbdt-8", "-12.50", 0.044, 31);
    let chall_wf = wf(-0.018, 0.12);
    let chall_decision = decide(&cfg, &chall, Some(&champ), Some(&Ok(chall_wf.clone())));
    assert!(!chall_decision.promote);
    let row = |v: &str, status: &str, created: i64, meta: serde_json::Value| {
        let artifact = dir.join(format!("{v}.json"));
        std::fs::write(&artifact, "{}").unwrap();
        clm::db::ModelRow {
            version: v.into(),
            kind: "gbdt".into(),
            created_at: created,
            artifact_uri: artifact.display().to_string(),
            sha256: "ab".repeat(32),
            status: status.into(),
            deployed_at: (status == "champion").then_some(created),
            metadata: meta,
        }
    };
    let meta = |c: &Candidate, w: &WalkForwardCard, d: &clm::gate::GateDecision| serde_json::json!({"challenger": c, "walkforward": Ok::<_, String>(w), "decision": d});
    let index = clm::registry::Index {
        champion: Some("gbdt-7".into()),
        models: vec![
            row(
                "gbdt-8",
                "rejected",
                now - 3_600_000,
                meta(&chall, &chall_wf, &chall_decision),
            ),
            row(
                "gbdt-7",
                "champion",
                now - 5 * 3_600_000,
                meta(&champ, &champ_wf, &champ_decision),
            ),
            row(
                "gbdt-6",
                "retired",
                now - 30 * 3_600_000,
                serde_json::json!({"walkforward": {"Err": "too few candles"}}),
            ),
        ],
    };
    clm::registry::write_index(dir, &index).unwrap();
}

/// Each symbol's latest decision: BNBUSDT traded, DOGEUSDT refused by risk (the refusal read
/// before its intent and its signal), SOLUSDT held (no edge), ADAUSDT held back by the
/// daily-loss pause that LTCUSDT's refusal announced.
async fn decisions(f: &common::Fixture, sh: &Arc<Shared>) {
    use qt_events::{OrderKind, SignalAction, SignalGenerated};
    let now = f.clock.now_ms();
    let signal = |sym: &str, action: SignalAction, conf: f64| {
        f.envelope(Event::SignalGenerated(SignalGenerated {
            symbol: sym.into(),
            action,
            confidence: conf,
            model: "gbdt".into(),
            model_version: "gbdt-20260101-7".into(),
            candle_open_time: now - 300_000,
            features: BTreeMap::new(),
            // Priced as the gbdt's expected-value rule prices: the side taken clears its
            // margin, a HOLD's better side does not.
            expected_return: Some(if action == SignalAction::Hold {
                -0.0004
            } else {
                0.0012
            }),
        }))
    };
    let intent = |sym: &str, signal_id: &str, side: PositionSide| {
        f.envelope(Event::OpenPosition(qt_events::OpenPosition {
            intent_id: format!("tb-open-{sym}"),
            symbol: sym.into(),
            side,
            quantity: dec!(1),
            order_type: OrderKind::Market,
            limit_price: None,
            leverage: 5,
            reference_price: dec!(100),
            signal: Some(SignalRef {
                signal_id: signal_id.into(),
                ..sig("gbdt-20260101-7").unwrap()
            }),
        }))
    };
    let refused = |sym: &str, intent: &str, reason: RejectReason, msg: &str, until: Option<i64>| {
        f.envelope(Event::OrderRejected(OrderRejected {
            intent_id: intent.into(),
            client_order_id: None,
            symbol: sym.into(),
            reason,
            message: msg.into(),
            exchange_code: None,
            until_ms: until,
        }))
    };
    let bnb = signal("BNBUSDT", SignalAction::Buy, 0.66);
    let doge = signal("DOGEUSDT", SignalAction::Sell, 0.61);
    let mut envs = vec![
        refused(
            "LTCUSDT",
            "tb-open-LTCUSDT",
            RejectReason::DailyLossPause,
            "paused after a daily-loss breach",
            Some(now + 2 * 3_600_000),
        ),
        intent("BNBUSDT", &bnb.id, PositionSide::Long),
        bnb.clone(),
        f.envelope(Event::PositionOpened(PositionOpened {
            position_id: "BNBUSDT-3".into(),
            symbol: "BNBUSDT".into(),
            side: PositionSide::Long,
            quantity: dec!(1),
            entry_price: dec!(600),
            leverage: 5,
            intent_id: "tb-open-BNBUSDT".into(),
            opened_at: now,
            signal: sig("gbdt-20260101-7"),
        })),
        refused(
            "DOGEUSDT",
            "tb-open-DOGEUSDT",
            RejectReason::MaxGrossExposure,
            "gross exposure would exceed 20000",
            None,
        ),
        intent("DOGEUSDT", &doge.id, PositionSide::Short),
        doge.clone(),
        signal("SOLUSDT", SignalAction::Hold, 0.40),
        signal("ADAUSDT", SignalAction::Buy, 0.70),
    ];
    for env in envs.drain(..) {
        sh.apply(&env).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_explains_decisions_shows_state_and_model_cards_and_its_controls_publish_only_when_confirmed()
 {
    let Some(bin) = cdp::chromium() else {
        qt_testkit::skip_unless_ci("chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let f = common::fixture();
    let models_dir = tempfile::tempdir().unwrap();
    write_registry(models_dir.path(), f.clock.now_ms());

    // The real clm's /health/clm, its schedule set as a run would leave it.
    let clm_db = clm::Db::open(&qt_store::sqlite_url(&f.dir.path().join("clm.db")))
        .await
        .unwrap();
    let clock: qt_events::clock::SharedClock = f.clock.clone();
    let clm = clm::Clm::new(clm_db, f.bus.clone(), clock, clm::Settings::default());
    let next_run = f.clock.now_ms() + 3 * 3_600_000;
    clm.status.lock().unwrap().schedule = clm::Schedule {
        next_run_at: next_run,
        last_result: Some(clm::app::LastResult {
            run_id: "r3".into(),
            version: "gbdt-8".into(),
            finished_at: f.clock.now_ms() - 3_600_000,
            outcome: "rejected".into(),
            detail: "kept champion".into(),
        }),
        runs: 3,
        ..clm::Schedule::default()
    };
    let cl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clm_addr = cl.local_addr().unwrap();
    // Its /health/ready is qt-runtime's (not part of clm's routes): answered here.
    let clm_app = clm::routes(clm.clone()).route(
        "/health/ready",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"ready": true})) }),
    );
    tokio::spawn(async move { axum::serve(cl, clm_app).await.unwrap() });

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Names as the environment gives them (`…__SERVICES__EXIT_BRAIN` is read `exit_brain`).
    let settings = Settings {
        services: BTreeMap::from([
            (
                "portfolio_intelligence".to_owned(),
                format!("http://{addr}"),
            ),
            ("exit_brain".to_owned(), format!("http://{dead}")),
            ("clm".to_owned(), format!("http://{clm_addr}")),
            ("trading_bot".to_owned(), String::new()),
        ]),
        api_token: portfolio_intelligence::settings::Secret::new("tok-1"),
        models_dir: models_dir.path().to_path_buf(),
        ..Settings::default()
    };
    let sh = f.shared(settings).await;
    let app = api::router(sh.clone()).route(
        "/health/ready",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"ready": true})) }),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    populate(&f, &sh).await;
    decisions(&f, &sh).await;
    sh.restore_control().await.unwrap();
    sh.observe().await;

    let state: qt_events::api::Dashboard = reqwest::get(format!("http://{addr}/api/dashboard"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // What the API says, before the page is checked against it.
    let outcomes: BTreeMap<&str, &str> = state
        .decisions
        .iter()
        .map(|d| (d.symbol.as_str(), d.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        BTreeMap::from([
            ("ADAUSDT", "paused"),
            ("BNBUSDT", "traded"),
            ("DOGEUSDT", "refused"),
            ("SOLUSDT", "no_edge"),
        ])
    );
    let kill = state
        .kill_switch_state
        .clone()
        .expect("the kill switch is known");
    assert!(!kill.enabled && kill.reason.contains("never set"));
    let pause = state.pause.clone().expect("the daily-loss pause is shown");
    assert_eq!(pause.until, Some(f.clock.now_ms() + 2 * 3_600_000));
    assert_eq!(state.models.champion.as_deref(), Some("gbdt-7"));
    assert_eq!(state.models.cards.len(), 3);
    assert_eq!(
        state.models.schedule.as_ref().map(|s| s.next_run_at),
        Some(next_run)
    );

    let mut b = cdp::Browser::launch(&bin, 1280, 900).await;
    let url = format!("http://{addr}/");
    b.goto(&url).await;
    b.wait_for("document.getElementById('conn').textContent === 'connected' && document.querySelectorAll('#decisions tr[data-symbol]').length === 4").await;

    // Decisions: each row says what the API says.
    for d in &state.decisions {
        let row = b
            .eval(&format!(
                "(() => {{ const r = document.querySelector('#decisions tr[data-symbol=\"{}\"]'); return [r.dataset.outcome, r.innerText]; }})()",
                d.symbol
            ))
            .await;
        assert_eq!(row[0], serde_json::json!(d.outcome), "{}", d.symbol);
        let text = row[1].as_str().unwrap();
        assert!(text.contains(&d.action), "{text}");
        assert!(text.contains(&format!("{:.2}", d.confidence)), "{text}");
        let ev = d.expected_return.expect("every test signal is priced");
        assert_eq!(ev, if d.action == "HOLD" { -0.0004 } else { 0.0012 });
        assert!(text.contains(&format!("{:.3}%", ev * 100.0)), "{text}");
        assert!(text.contains(&d.why), "{text} shows {:?}", d.why);
    }
    let doge = state
        .decisions
        .iter()
        .find(|d| d.symbol == "DOGEUSDT")
        .unwrap();
    assert!(
        doge.why
            .contains("MAX_GROSS_EXPOSURE: gross exposure would exceed 20000")
    );
    let ada = state
        .decisions
        .iter()
        .find(|d| d.symbol == "ADAUSDT")
        .unwrap();
    assert!(ada.why.contains("DAILY_LOSS_PAUSE"), "{}", ada.why);

    // State: the kill switch known, the pause with its end, the breaker with its reason.
    let text = |sel: &str| {
        format!(
            "document.querySelector({}).innerText",
            serde_json::json!(sel)
        )
    };
    let kill_text = b.eval(&text("[data-state=kill]")).await;
    assert!(
        kill_text.as_str().unwrap().contains("off")
            && kill_text.as_str().unwrap().contains(&kill.reason),
        "{kill_text}"
    );
    assert_eq!(
        b.eval("document.getElementById('kill').textContent").await,
        "off"
    );
    let pause_text = b.eval(&text("[data-state=pause]")).await;
    let end = portfolio_intelligence::decisions::iso(pause.until.unwrap());
    assert!(
        pause_text.as_str().unwrap().contains(&end),
        "{pause_text} shows {end}"
    );
    let breaker = b.eval(&text("[data-state=breaker]")).await;
    assert!(
        breaker.as_str().unwrap().contains("TRIPPED")
            && breaker.as_str().unwrap().contains("10% below its peak"),
        "{breaker}"
    );

    // Model cards: every version with its gate's verdict and reason; the schedule.
    for c in &state.models.cards {
        let card = b
            .eval(&text(&format!("[data-card=\"{}\"]", c.version)))
            .await;
        let card = card.as_str().unwrap();
        assert!(card.contains(&c.status), "{card}");
        if !c.reason.is_empty() {
            assert!(card.contains(&c.reason), "{card} shows {:?}", c.reason);
        }
        if let Some(w) = &c.walkforward {
            assert!(
                card.contains(&format!(
                    "DSR {:.2} over {} trials",
                    w.dsr.unwrap(),
                    w.trials
                )),
                "{card}"
            );
            assert!(
                card.contains(&format!("buy & hold {:.2}%", w.buy_and_hold_return * 100.0)),
                "{card}"
            );
        }
        if let Some(e) = &c.walkforward_error {
            assert!(card.contains(e), "{card}");
        }
        assert_eq!(
            card.contains("trading now"),
            c.version == "gbdt-7",
            "{card}"
        );
        assert_eq!(card.contains("Roll back"), c.version != "gbdt-7", "{card}");
    }
    let refused = state
        .models
        .cards
        .iter()
        .find(|c| c.version == "gbdt-8")
        .unwrap();
    assert_eq!(refused.promoted, Some(false));
    assert!(
        refused.reason.contains("beats_champion_net_pnl") && refused.reason.contains("walkforward"),
        "{}",
        refused.reason
    );
    let next = b.eval(&text("[data-next]")).await;
    assert!(
        next.as_str()
            .unwrap()
            .contains(&portfolio_intelligence::decisions::iso(next_run)),
        "{next}"
    );
    let services = b.eval(&text("#services")).await;
    let services = services.as_str().unwrap();
    assert!(
        services.contains("clm ready")
            && services.contains("exit-brain NOT READY")
            && services.contains("portfolio-intelligence ready")
            && !services.contains("trading"),
        "{services}"
    );

    // PnL by hour and weekday, by symbol and model version, as the API counts them.
    let m = &state.metrics;
    assert_eq!(
        m.by_hour_utc.iter().map(|b| b.trades).sum::<u32>(),
        m.totals.trades
    );
    for (attr, list) in [("hour", &m.by_hour_utc), ("weekday", &m.by_weekday_utc)] {
        for bucket in list {
            let title = b
                .eval(&format!(
                    "document.querySelector('[data-{attr}=\"{}\"]').title",
                    bucket.bucket
                ))
                .await;
            let want = format!(
                "{}: {} trades, net {:.2}",
                bucket.label,
                bucket.trades,
                bucket.net_pnl.round_dp(2)
            );
            assert_eq!(title, serde_json::json!(want));
        }
    }
    let best = b.eval(&text("#best-worst")).await;
    assert!(best.as_str().unwrap().starts_with("best hour"), "{best}");
    for (sym, st) in &m.by_symbol {
        let row = b
            .eval(&text(&format!("[data-group=\"symbol:{sym}\"]")))
            .await;
        assert!(
            row.as_str()
                .unwrap()
                .contains(&format!("{:.2}", st.net_pnl.round_dp(2))),
            "{row}"
        );
    }
    assert!(b.eval("!!document.getElementById('dd-path')").await == serde_json::json!(true));
    let start = b.eval(&text("[data-axis=start]")).await;
    let first = portfolio_intelligence::decisions::iso(state.equity_curve[0].0);
    assert_eq!(
        start.as_str().unwrap(),
        &first[5..16],
        "time axis from the first point"
    );

    // A screenshot per panel.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-panels");
    std::fs::create_dir_all(&shots).unwrap();
    let panels = b
        .eval("[...document.querySelectorAll('main > section')].map((s) => s.id)")
        .await;
    let panels: Vec<String> = serde_json::from_value(panels).unwrap();
    assert_eq!(panels.len(), 16, "{panels:?}");
    for id in &panels {
        let path = shots.join(format!("{id}.png"));
        let n = b.screenshot(&format!("#{id}"), &path).await;
        assert!(n > 2_000, "{id}: a real picture ({n} bytes)");
    }
    println!("panel screenshots: {}", shots.display());

    // Controls: each asks first; Cancel sends nothing; a wrong token is refused; Confirm
    // publishes the command with its reason.
    let click = |sel: &str| format!("document.querySelector({}).click()", serde_json::json!(sel));
    let result = "document.getElementById('control-status').dataset.result";
    let control = |f: &common::Fixture| {
        let f = f.bus.clone();
        async move {
            let key = f.key(Stream::Control);
            f.range(&key, "-", "+", 1000).await.unwrap().len()
        }
    };
    b.eval(&click("[data-action=kill-on]")).await;
    assert_eq!(
        b.eval("document.getElementById('confirm').className").await,
        "open"
    );
    b.eval(&click("#confirm-no")).await;
    b.wait_for(&format!("{result} === 'cancelled'")).await;
    assert_eq!(control(&f).await, 0, "Cancel published nothing");

    let confirm = |reason: &str, token: &str| {
        format!(
            "document.getElementById('confirm-reason').value = {}; document.getElementById('confirm-token').value = {}; document.getElementById('confirm-yes').click()",
            serde_json::json!(reason),
            serde_json::json!(token)
        )
    };
    b.eval(&click("[data-action=kill-on]")).await;
    b.eval(&confirm("halt for the test", "not-the-token")).await;
    b.wait_for(&format!("{result} === 'refused'")).await;
    let status = b
        .eval("document.getElementById('control-status').textContent")
        .await;
    assert!(
        status.as_str().unwrap().contains("wrong bearer token"),
        "{status}"
    );
    assert_eq!(control(&f).await, 0);

    b.eval(&click("[data-action=kill-on]")).await;
    b.eval(&confirm("halt for the test", "tok-1")).await;
    b.wait_for(&format!("{result} === 'sent'")).await;
    let sent = f.events(Stream::Control).await;
    let [env] = sent.as_slice() else {
        panic!("one command: {sent:?}")
    };
    let Event::SetKillSwitch(k) = &env.event else {
        panic!("{env:?}")
    };
    assert!(
        k.enabled
            && k.reason == "halt for the test"
            && k.requested_by == "portfolio-intelligence-api"
    );
    // Reflected live once the command is consumed: the pill, the state line, ADA's decision.
    sh.apply(env).await.unwrap();
    b.wait_for("document.getElementById('kill').textContent === 'ON' && document.querySelector('#decisions tr[data-symbol=\"ADAUSDT\"]').dataset.outcome === 'kill_switch'").await;
    let kill_text = b.eval(&text("[data-state=kill]")).await;
    assert!(
        kill_text.as_str().unwrap().contains("halt for the test"),
        "{kill_text}"
    );

    // Resume needs a reason: without one the confirm step stays open and nothing is sent.
    b.eval(&click("[data-action=resume]")).await;
    b.eval(&confirm("", "tok-1")).await;
    assert_eq!(
        b.eval("document.getElementById('confirm').className").await,
        "open"
    );
    assert_eq!(
        b.eval("document.getElementById('confirm-detail').textContent")
            .await,
        "a reason is required"
    );
    assert_eq!(control(&f).await, 1);
    b.eval(&confirm("drawdown understood", "tok-1")).await;
    b.wait_for(&format!("{result} === 'sent' && document.getElementById('control-status').textContent.startsWith('Resume')")).await;

    for (action, starts) in [("close-all", "Close ALL"), ("retrain", "Retrain")] {
        b.eval(&click(&format!("[data-action={action}]"))).await;
        b.eval(&confirm("operator test", "tok-1")).await;
        b.wait_for(&format!(
            "document.getElementById('control-status').textContent.startsWith('{starts}')"
        ))
        .await;
    }
    let kinds: Vec<String> = f
        .events(Stream::Control)
        .await
        .iter()
        .map(|e| e.type_name().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["SetKillSwitch", "ResumeTrading", "CloseAll", "RetrainNow"]
    );

    // Close one position: a ClosePosition intent for that symbol.
    b.eval(&click("[data-action=close-position][data-symbol=BTCUSDT]"))
        .await;
    b.eval(&confirm("trim BTC", "tok-1")).await;
    b.wait_for("document.getElementById('control-status').textContent.startsWith('Close BTCUSDT')")
        .await;
    let intents = f.events(Stream::Intents).await;
    let closes: Vec<_> = intents
        .iter()
        .filter_map(|e| match &e.event {
            Event::ClosePosition(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 1, "{intents:?}");
    assert_eq!(closes[0].symbol, "BTCUSDT");
    assert!(closes[0].reason.contains("trim BTC"));

    // Roll back to gbdt-6: ModelRolledBack with its artifact, from the champion.
    b.eval(&click("[data-action=rollback][data-version=\"gbdt-6\"]"))
        .await;
    b.eval(&confirm("gbdt-7 misbehaves", "tok-1")).await;
    b.wait_for(
        "document.getElementById('control-status').textContent.startsWith('Roll back to gbdt-6')",
    )
    .await;
    let rolled: Vec<_> = f
        .events(Stream::Models)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::ModelRolledBack(r) => Some(r),
            _ => None,
        })
        .collect();
    let [r] = rolled.as_slice() else {
        panic!("one rollback: {rolled:?}")
    };
    assert_eq!(
        (r.from_version.as_str(), r.artifact.model_version.as_str()),
        ("gbdt-7", "gbdt-6")
    );
    assert!(
        r.artifact.artifact_uri.ends_with("gbdt-6.json") && r.reason.contains("gbdt-7 misbehaves")
    );

    // A phone: nothing wider than the screen, every panel within itself, the trade table's
    // last column visible.
    b.viewport(390, 844, true).await;
    b.goto(&url).await;
    b.wait_for("document.getElementById('conn').textContent === 'connected' && document.querySelectorAll('#trades tbody tr').length > 0").await;
    let fit = b
        .eval(
            "(() => { const w = document.documentElement.clientWidth; \
             const wide = [...document.querySelectorAll('main > section')].filter((s) => s.scrollWidth > s.clientWidth).map((s) => s.id + ' ' + s.scrollWidth + '>' + s.clientWidth); \
             const sec = document.getElementById('panel-trades').getBoundingClientRect(); \
             const th = [...document.querySelectorAll('#trades thead th')].pop().getBoundingClientRect(); \
             return {page: document.documentElement.scrollWidth, w, wide, last_right: th.right, last_width: th.width, sec_right: sec.right}; })()",
        )
        .await;
    assert!(
        fit["page"].as_f64().unwrap() <= fit["w"].as_f64().unwrap(),
        "{fit}"
    );
    assert_eq!(fit["wide"], serde_json::json!([]), "{fit}");
    assert!(
        fit["last_right"].as_f64().unwrap() <= fit["sec_right"].as_f64().unwrap()
            && fit["last_width"].as_f64().unwrap() > 10.0,
        "{fit}"
    );
    let phone = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-phone-390.png");
    assert!(b.screenshot("body", &phone).await > 10_000);
    println!("phone screenshot: {}", phone.display());
}
