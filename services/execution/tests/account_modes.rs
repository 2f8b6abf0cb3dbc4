//! The start-up check of the account's modes: the real execution binary against the real
//! simulator (and a real Redis), whose account is switched by the same `POST` endpoints as on
//! Binance. A position mode or multi-assets mode other than the configured one is refused with
//! exit code 2 and a message naming both values; the simulator refuses what Binance refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use qt_exchange::{ApiCode, Exchange, NewOrder};

/// How a run of the binary ended.
#[derive(Debug)]
enum Run {
    Exited(ExitStatus),
    /// It answered `/health/ready` and was killed.
    Ready,
    /// Neither within 30 s.
    Hung,
}

impl Run {
    fn code(&self) -> Option<i32> {
        match self {
            Run::Exited(s) => s.code(),
            _ => None,
        }
    }
}

/// Runs the execution binary against the fixture with `extra` settings until it exits or
/// answers ready (then it is killed); how it ended and its stderr.
fn run_execution(fx: &Fixture, extra: &[(&str, &str)]) -> (Run, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_execution"));
    cmd.env("QT_REDIS_URL", fx.redis.url())
        .env("QT_STREAM_PREFIX", fx.bus.names().prefix())
        .env("QT_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("QT_EXCHANGE_REST_URL", &fx.base)
        .env("QT_EXCHANGE_WS_URL", fx.base.replace("http://", "ws://"))
        .env("QT_API_KEY", KEY)
        .env("QT_API_SECRET", SECRET)
        .env("QT_DATABASE_URL", &fx.db_url)
        .env("QT_LOG_LEVEL", "warn")
        .current_dir(fx.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Run::Exited(s);
        }
        let ready = qt_testkit::http_get(&format!("127.0.0.1:{port}"), "/health/ready")
            .is_some_and(|(code, _)| code == 200);
        if ready || Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break if ready { Run::Ready } else { Run::Hung };
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_refuses_a_hedge_mode_account_with_exit_2_naming_both_modes() {
    let fx = fixture().await;
    assert!(!fx.client.dual_side_position().await.unwrap());
    fx.client.set_dual_side_position(true).await.unwrap();
    assert!(fx.client.dual_side_position().await.unwrap());
    let (status, err) = run_execution(&fx, &[]);
    assert_eq!(status.code(), Some(2), "{status:?}: {err}");
    assert!(err.contains("hedge position mode"), "{err}");
    assert!(err.contains("dualSidePosition=true"), "{err}");
    assert!(err.contains("QT_POSITION_MODE=one-way"), "{err}");
    // Nothing was traded: no order reached the exchange.
    assert!(fx.all_orders().await.is_empty());
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_checks_multi_assets_mode_against_its_setting() {
    let fx = fixture().await;
    fx.client.set_multi_assets_margin(true).await.unwrap();
    assert!(fx.client.multi_assets_margin().await.unwrap());
    let (status, err) = run_execution(&fx, &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("multiAssetsMargin=true"), "{err}");
    assert!(err.contains("QT_MULTI_ASSETS_MARGIN=false"), "{err}");
    assert!(
        !err.contains("dualSidePosition"),
        "only the mode that differs: {err}"
    );
    // Configured as the account is: it starts and answers ready.
    let (status, err) = run_execution(&fx, &[("QT_MULTI_ASSETS_MARGIN", "true")]);
    assert!(matches!(status, Run::Ready), "{status:?}: {err}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedge_mode_configured_is_refused_as_a_bad_setting() {
    let fx = fixture().await;
    let (status, err) = run_execution(&fx, &[("QT_POSITION_MODE", "hedge")]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("QT_POSITION_MODE"), "{err}");
    assert!(
        err.contains("not yet kept per side"),
        "names what is missing: {err}"
    );
    let (status, err) = run_execution(&fx, &[("QT_POSITION_MODE", "dual")]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("QT_POSITION_MODE: expected one-way|hedge"),
        "{err}"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_changes_the_position_mode_only_as_binance_does() {
    let fx = fixture().await;
    let mark = fx.mark().await;
    // To the mode it is in: "no need to change", which the client takes as done.
    fx.client.set_dual_side_position(false).await.unwrap();
    // Not with a position.
    fx.client
        .new_order(&NewOrder::market(
            SYMBOL,
            qt_events::Side::Buy,
            dec("0.01"),
            "m-1",
        ))
        .await
        .unwrap();
    let e = fx.client.set_dual_side_position(true).await.unwrap_err();
    assert_eq!(e.api_code(), Some(ApiCode::Unknown(-4068)), "{e}");
    fx.client
        .new_order(
            &NewOrder::market(SYMBOL, qt_events::Side::Sell, dec("0.01"), "m-2").reduce_only(true),
        )
        .await
        .unwrap();
    // Not with an open order.
    let resting = NewOrder::limit(
        SYMBOL,
        qt_events::Side::Buy,
        dec("0.01"),
        (mark * dec("0.9")).round_dp(1),
        "l-1",
    );
    fx.client.new_order(&resting).await.unwrap();
    let e = fx.client.set_dual_side_position(true).await.unwrap_err();
    assert_eq!(e.api_code(), Some(ApiCode::Unknown(-4067)), "{e}");
    fx.client.cancel_order(SYMBOL, "l-1").await.unwrap();
    // Flat and nothing open: switched; a one-way order is then refused as on Binance.
    fx.client.set_dual_side_position(true).await.unwrap();
    let e = fx
        .client
        .new_order(&NewOrder::market(
            SYMBOL,
            qt_events::Side::Buy,
            dec("0.01"),
            "m-3",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.api_code(), Some(ApiCode::Unknown(-4061)), "{e}");
    fx.stop().await;
}
