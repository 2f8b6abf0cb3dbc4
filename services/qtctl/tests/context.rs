//! `qtctl context fetch` as a person runs it: the real binary against the real simulator,
//! writing the documented CSV files that `qt_context::ContextHistory` reads back.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use qt_testkit::SimExchange;

#[test]
fn context_fetch_writes_funding_and_positioning_history_files_from_the_exchange() {
    let sim = SimExchange::builder()
        .repo_data(&["BTCUSDT"])
        .warmup_candles(300)
        .start();
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args([
            "context",
            "fetch",
            "--from",
            "2015-01-01",
            "--to",
            "2099-12-31",
            "--symbols",
            "BTCUSDT",
            "--period",
            "5m",
            "--rest-url",
        ])
        .arg(sim.rest_url())
        .arg("--out")
        .arg(out.path())
        .env("QT_EXCHANGE", "paper")
        .env_remove("QT_EXCHANGE_REST_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("funding_rate-BTCUSDT.csv"), "{stdout}");

    let text = std::fs::read_to_string(out.path().join("funding_rate-BTCUSDT.csv")).unwrap();
    assert!(
        text.starts_with("published_at,as_of,value,label\n"),
        "{text}"
    );
    let rows =
        qt_context::history::read_series(&out.path().join("funding_rate-BTCUSDT.csv")).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.published_at == r.as_of + 60_000));
    assert!(out.path().join("open_interest-BTCUSDT.csv").exists());

    let bad = Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args([
            "context",
            "fetch",
            "--from",
            "2024-13-01",
            "--to",
            "2024-01-02",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from"));
}
