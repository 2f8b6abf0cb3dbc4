//! The dashboard in headless Chromium: the page served by the service connects to the WebSocket
//! and shows the equity curve, positions with PnL, limit gauges, trades, rejections, the model,
//! service health and stream lag, alerts, and the drawdown breaker with its resume button. A
//! screenshot is kept under the test's output (`$CARGO_TARGET_TMPDIR/dashboard.png`). Skips
//! with a message when `chromium` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
