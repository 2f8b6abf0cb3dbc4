//! The real `sim-exchange` binary as a process: flags, SIM_API_KEYS, health, signed requests,
//! stepping, and state kept across a restart of the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_testkit::{SimExchange, SimExchangeBuilder};

/// The binary serving BTCUSDT and ETHUSDT from the repo's klines, its state in `state_dir`.
fn builder(state_dir: &std::path::Path) -> SimExchangeBuilder {
    SimExchange::builder()
        .data(repo_data("BTCUSDT").parent().unwrap())
        .symbols(&["BTCUSDT", "ETHUSDT"])
        .warmup_candles(100)
        .args(&["--state-dir", state_dir.to_str().unwrap()])
        .env("QT_LOG_LEVEL", "warn")
}

#[tokio::test]
async fn binary_serves_signed_requests_and_keeps_state_across_a_process_restart() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    // Keys from SIM_API_KEYS.
    let mut p = builder(dir.path())
        .key(KEY, SECRET)
        .key("other", "othersecret")
        .start();
    let sim = connect(&p.rest_url());
    assert_eq!(sim.get("/health/live").await.status, 200);
    assert_eq!(sim.get("/health/ready").await.status, 200);
    let info = sim.get("/fapi/v1/exchangeInfo").await;
    assert_eq!(info.body["symbols"].as_array().unwrap().len(), 2);
    let r = sim
        .order(&[
            ("symbol", "ETHUSDT"),
            ("side", "SELL"),
            ("type", "MARKET"),
            ("quantity", "0.050"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sim.step(2).await;
    let cursor = sim.state().await["symbols"]["ETHUSDT"]["cursor"].clone();
    assert_eq!(cursor, 102);
    stop(&mut p);

    // Keys from a TOML --config file, the state from the first run.
    let mut p = builder(dir.path())
        .setting(&format!("keys = [\"{KEY}:{SECRET}\"]"))
        .setting("initial_balance = \"5000\"")
        .start();
    let sim = connect(&p.rest_url());
    assert_eq!(sim.state().await["symbols"]["ETHUSDT"]["cursor"], cursor);
    assert_eq!(sim.position("ETHUSDT").await, dec("-0.05"));
    stop(&mut p);
}

/// SIGTERM, then wait for a clean exit (the state is saved on the way out).
fn stop(p: &mut SimExchange) {
    let status = p.terminate(20);
    assert!(
        status.success(),
        "sim-exchange exited with {status}: {}",
        p.output()
    );
}
