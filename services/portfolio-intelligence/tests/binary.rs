//! The real `portfolio-intelligence` binary: a bad setting exits 2 naming it; with Redis, the
//! simulator and a SQLite file it becomes ready, syncs the wallet from the exchange, publishes
//! snapshots to `qt:portfolio`, serves the API and the dashboard, and stops on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use qt_events::{Event, Stream};
use qt_testkit::ChildService;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portfolio-intelligence"))
}

#[test]
fn a_bad_setting_exits_2_and_names_it() {
    let out = Command::new(bin())
        .env("QT_PORTFOLIO_INTELLIGENCE__SYNC_INTERVAL", "banana")
        .env("QT_REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sync_interval"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_syncs_publishes_snapshots_serves_the_api_and_stops_on_sigterm() {
    let f = common::fixture();
    let (_client, base, sim) = common::sim().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http_addr = format!("127.0.0.1:{port}");
    let redis_url = f.redis.url();
    let ws = base.replace("http://", "ws://");
    let env: Vec<(&str, &str)> = vec![
        ("QT_REDIS_URL", &redis_url),
        ("QT_STREAM_PREFIX", "t:"),
        ("QT_HTTP_ADDR", &http_addr),
        ("QT_EXCHANGE_REST_URL", &base),
        ("QT_EXCHANGE_WS_URL", &ws),
        ("QT_API_KEY", common::KEY),
        ("QT_API_SECRET", common::SECRET),
        ("QT_DATABASE_URL", &f.db_url),
        ("QT_PORTFOLIO_INTELLIGENCE__SYNC_INTERVAL", "300ms"),
        ("QT_PORTFOLIO_INTELLIGENCE__SNAPSHOT_INTERVAL", "300ms"),
        ("QT_PORTFOLIO_INTELLIGENCE__API_TOKEN", "pi-api-token-7f3a"),
        ("QT_LOG_LEVEL", "info"),
    ];
    let mut child = ChildService::spawn(bin(), &[], &env, f.dir.path().join("pi.log"));
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ok = http
            .get(format!("http://{http_addr}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The snapshot carries the simulator's wallet once the first sync is done.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let snap = loop {
        let found = f
            .events(Stream::Portfolio)
            .await
            .into_iter()
            .find_map(|e| match e.event {
                Event::PortfolioSnapshot(s)
                    if s.wallet_balance == rust_decimal::Decimal::from(5000) =>
                {
                    Some(s)
                }
                _ => None,
            });
        if let Some(s) = found {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot with the exchange's wallet:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(snap.open_positions, 0);
    let p: serde_json::Value = http
        .get(format!("http://{http_addr}/api/portfolio"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["snapshot"]["wallet_balance"], "5000");
    let page = http
        .get(format!("http://{http_addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Quantum Trader"));
    let r = http
        .post(format!("http://{http_addr}/api/control/kill-switch"))
        .body(r#"{"enabled":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        !child.output().contains("pi-api-token-7f3a"),
        "the token never reaches the log"
    );
    let status = child.terminate(20);
    assert!(
        status.success(),
        "clean exit on SIGTERM:\n{}",
        child.output()
    );
    drop(sim);
}

#[test]
fn settings_come_from_the_environment_with_nested_keys() {
    let env = [
        ("QT_PORTFOLIO_INTELLIGENCE__SYNC_INTERVAL", "45s"),
        ("QT_PORTFOLIO_INTELLIGENCE__LIMITS__MAX_DAILY_LOSS", "250"),
        (
            "QT_PORTFOLIO_INTELLIGENCE__ALERTS__TELEGRAM_CHAT_ID",
            "-100123",
        ),
        ("QT_PORTFOLIO_INTELLIGENCE__ALERTS__WIN_RATE_TRADES", "30"),
        (
            "QT_PORTFOLIO_INTELLIGENCE__SERVICES__EXECUTION",
            "http://execution:8082",
        ),
        ("QT_PORTFOLIO_INTELLIGENCE__API_TOKEN", "12345"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let cfg = qt_runtime::Config::<portfolio_intelligence::Settings>::load_from(
        "portfolio-intelligence",
        env,
    )
    .unwrap();
    let s = cfg.service;
    assert_eq!(s.sync_interval, Duration::from_secs(45));
    assert_eq!(s.limits.max_daily_loss, rust_decimal::Decimal::from(250));
    assert_eq!(
        s.alerts.telegram_chat_id, "-100123",
        "numeric chat ids are read as text"
    );
    assert_eq!(s.alerts.win_rate_trades, 30);
    assert_eq!(s.services["execution"], "http://execution:8082");
    assert_eq!(s.api_token.expose(), "12345");
    assert_eq!(cfg.common.http_addr.port(), 8084);
}

/// docker-compose.yml's variables replace the defaults' entries of the same services (the
/// names read in lower case match the defaults' keys), so no service is polled twice.
#[test]
fn compose_service_urls_replace_the_run_sh_defaults_one_by_one() {
    let env = [
        ("TRADING_BOT", "http://trading-bot:8081"),
        ("EXECUTION", "http://execution:8082"),
        ("EXIT_BRAIN", "http://exit-brain:8083"),
        ("CLM", "http://clm:8085"),
    ]
    .map(|(k, v)| {
        (
            format!("QT_PORTFOLIO_INTELLIGENCE__SERVICES__{k}"),
            v.to_owned(),
        )
    });
    let cfg = qt_runtime::Config::<portfolio_intelligence::Settings>::load_from(
        "portfolio-intelligence",
        env,
    )
    .unwrap();
    let polled = cfg.service.polled_services();
    let expect: std::collections::BTreeMap<String, String> = [
        ("clm", "http://clm:8085"),
        ("execution", "http://execution:8082"),
        ("exit-brain", "http://exit-brain:8083"),
        ("portfolio-intelligence", "http://127.0.0.1:8084"),
        ("trading-bot", "http://trading-bot:8081"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    assert_eq!(polled, expect);
}
