//! The `trading-bot` binary as a process: its config, consumers and market path are wired
//! (candles and signals published, a control command consumed in its group), SIGTERM stops it
//! cleanly, and a setting that cannot work exits with code 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use qt_events::{Event, SetKillSwitch};
use qt_testkit::ChildService;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trading-bot"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_publishes_candles_and_signals_consumes_control_and_stops_on_sigterm() {
    let f = Fixture::infra(|_, _| {}).await;
    let config = f.dir.path().join("qt.toml");
    std::fs::write(&config, "[trading_bot]\nsymbols = [\"BTCUSDT\"]\n").unwrap();
    let redis_url = f.redis.url();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http_addr = format!("127.0.0.1:{port}");
    let env = [
        ("QT_CONFIG", config.to_str().unwrap()),
        ("QT_REDIS_URL", redis_url.as_str()),
        ("QT_STREAM_PREFIX", "qt-test:"),
        ("QT_HTTP_ADDR", http_addr.as_str()),
        ("QT_LOG_FORMAT", "json"),
        ("QT_EXCHANGE_REST_URL", f.sim_base.as_str()),
        ("QT_EXCHANGE_WS_URL", f.sim_ws.as_str()),
        ("QT_API_KEY", KEY),
        ("QT_API_SECRET", SECRET),
    ];
    let mut bot = ChildService::spawn(bin(), &[], &env, f.dir.path().join("bot.log"));
    // Ready once warmed up and connected: candles closing before that are history.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = f
            .http
            .get(format!("http://{http_addr}/health/market"))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {}", bot.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f.step(1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let signals = loop {
        let s = f.signals().await;
        if !s.is_empty() {
            break s;
        }
        assert!(Instant::now() < deadline, "no signal: {}", bot.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // No model configured: model none, HOLD, and the log says nothing trades.
    assert_eq!(
        (signals[0].model.as_str(), signals[0].model_version.as_str()),
        ("none", "none")
    );
    assert_eq!(signals[0].action, qt_events::SignalAction::Hold);
    assert!(
        bot.output().contains("no validated model"),
        "{}",
        bot.output()
    );
    assert_eq!(f.candles().await.len(), 1);
    f.tell(Event::SetKillSwitch(SetKillSwitch {
        command_id: "k1".into(),
        enabled: true,
        reason: "test".into(),
        requested_by: "test".into(),
    }))
    .await;
    let status = bot.terminate(15);
    assert!(status.success(), "{status:?}: {}", bot.output());
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_that_cannot_work_exits_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = ChildService::spawn(
        bin(),
        &[],
        &[
            ("QT_TRADING_BOT__INTERVAL", "7x"),
            ("QT_REDIS_URL", "redis://127.0.0.1:1"),
        ],
        dir.path().join("bot.log"),
    );
    let status = bot.wait_exit(10);
    assert_eq!(status.code(), Some(2), "{}", bot.output());
    assert!(bot.output().contains("interval"), "{}", bot.output());
}
