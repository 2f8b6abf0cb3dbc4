//! The real `sim-exchange` binary as a process: flags, SIM_API_KEYS, health, signed requests,
//! stepping, and state kept across a restart of the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Proc {
    child: tokio::process::Child,
    base: String,
}

/// Keys come from `SIM_API_KEYS`, or from a TOML `--config` file when one is given.
async fn spawn(state_dir: &std::path::Path, config: Option<&std::path::Path>) -> Proc {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sim-exchange"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--speed",
        "0",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--warmup-candles",
        "100",
    ])
    .arg("--data")
    .arg(repo_data("BTCUSDT").parent().unwrap())
    .arg("--state-dir")
    .arg(state_dir)
    .env_remove("SIM_API_KEYS")
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .kill_on_drop(true);
    match config {
        Some(c) => {
            cmd.arg("--config").arg(c);
        }
        None => {
            cmd.env("SIM_API_KEYS", format!("{KEY}:{SECRET},other:othersecret"));
        }
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line.rsplit(' ').next().unwrap().to_string();
    Proc {
        child,
        base: format!("http://{addr}"),
    }
}

#[tokio::test]
async fn binary_serves_signed_requests_and_keeps_state_across_a_process_restart() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), None).await;
    let sim = sim_at(&p.base);
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
    stop(p).await;

    let config = dir.path().join("sim.toml");
    std::fs::write(
        &config,
        format!("keys = [\"{KEY}:{SECRET}\"]\ninitial_balance = \"5000\"\n"),
    )
    .unwrap();
    let p = spawn(dir.path(), Some(&config)).await;
    let sim = sim_at(&p.base);
    assert_eq!(sim.state().await["symbols"]["ETHUSDT"]["cursor"], cursor);
    assert_eq!(sim.position("ETHUSDT").await, dec("-0.05"));
    stop(p).await;
}

fn sim_at(base: &str) -> Sim {
    connect(base)
}

/// SIGTERM, then wait for a clean exit (the state is saved on the way out).
async fn stop(mut p: Proc) {
    let pid = p.child.id().unwrap().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let status = tokio::time::timeout(Duration::from_secs(20), p.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "sim-exchange exited with {status}");
}
