//! `qtctl doctor --exchange paper` against the real simulator (Binance's documented protocol):
//! every check passes on a fresh account and the round trip leaves nothing behind; a wrong
//! account mode or a symbol in use fails without placing anything; `live` is refused without
//! `--i-understand-live`.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use qt_events::{Decimal, Side};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig, NewOrder};
use qt_testkit::SimExchange;

const KEY: &str = "doctor-key";
const SECRET: &str = "doctor-secret";
const SYMBOL: &str = "BTCUSDT";

fn sim() -> SimExchange {
    SimExchange::builder()
        .key(KEY, SECRET)
        .repo_data(&[SYMBOL])
        .warmup_candles(300)
        .start()
}

fn doctor(sim: &SimExchange, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .arg("doctor")
        .args(args)
        .env("QT_SIM_URL", sim.rest_url())
        .env("QT_API_KEY", KEY)
        .env("QT_API_SECRET", SECRET)
        .env_remove("QT_EXCHANGE")
        .env_remove("QT_EXCHANGE_REST_URL")
        .env_remove("QT_EXCHANGE_WS_URL")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The result column of the row of `check`.
fn result_of(table: &str, check: &str) -> String {
    table
        .lines()
        .find(|l| l.starts_with(check) && l[check.len()..].starts_with("  "))
        .and_then(|l| l[check.len()..].split_whitespace().next())
        .unwrap_or_else(|| panic!("no row {check}:\n{table}"))
        .to_string()
}

fn client(sim: &SimExchange) -> BinanceClient {
    qt_exchange::install_crypto_provider();
    let cfg = ExchangeConfig::default()
        .with_urls(sim.rest_url(), sim.ws_url())
        .with_credentials(KEY, SECRET);
    BinanceClient::new(cfg, qt_events::clock::system()).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn doctor_passes_every_check_on_a_fresh_paper_account_and_leaves_nothing_open() {
    let sim = sim();
    let out = doctor(&sim, &["--exchange", "paper"]);
    let table = stdout(&out);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "exchange",
        "clock",
        "keys",
        "account modes",
        "filters BTCUSDT",
        "order",
        "stop",
        "cleanup",
    ] {
        assert_eq!(result_of(&table, check), "PASS", "{check}:\n{table}");
    }
    assert!(table.contains("every check passed"), "{table}");
    // It really traded: the entry, its stop and the close are on the exchange's records, and
    // the symbol is flat with nothing open.
    let c = client(&sim);
    rt().block_on(async {
        let positions = c.positions(Some(SYMBOL)).await.unwrap();
        assert!(positions.iter().all(|p| p.position_amt.is_zero()));
        assert!(c.open_orders(Some(SYMBOL)).await.unwrap().is_empty());
        assert!(c.open_algo_orders(Some(SYMBOL)).await.unwrap().is_empty());
        let account = c.account().await.unwrap();
        assert!(
            account.total_wallet_balance < Decimal::from(10_000),
            "the round trip paid its fees: {}",
            account.total_wallet_balance
        );
    });
}

#[test]
fn doctor_fails_on_an_account_in_the_wrong_mode_and_places_nothing() {
    let sim = sim();
    let c = client(&sim);
    rt().block_on(async { c.set_dual_side_position(true).await.unwrap() });
    let out = doctor(&sim, &["--exchange", "paper"]);
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(result_of(&table, "keys"), "PASS", "{table}");
    assert_eq!(result_of(&table, "account modes"), "FAIL", "{table}");
    assert!(table.contains("dualSidePosition=true"), "{table}");
    assert!(table.contains("QT_POSITION_MODE=one-way"), "{table}");
    assert_eq!(result_of(&table, "orders"), "SKIP", "{table}");
    rt().block_on(async {
        let wallet = c.account().await.unwrap().total_wallet_balance;
        assert_eq!(wallet, Decimal::from(10_000), "nothing traded");
    });
}

#[test]
fn doctor_never_trades_a_symbol_in_use() {
    let sim = sim();
    let c = client(&sim);
    rt().block_on(async {
        c.sync_time().await.unwrap();
        c.new_order(&NewOrder::market(
            SYMBOL,
            Side::Buy,
            "0.01".parse().unwrap(),
            "running-system-1",
        ))
        .await
        .unwrap();
    });
    let out = doctor(&sim, &["--exchange", "paper"]);
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(result_of(&table, "orders"), "FAIL", "{table}");
    assert!(table.contains("is in use"), "{table}");
    rt().block_on(async {
        let held: Decimal = c
            .positions(Some(SYMBOL))
            .await
            .unwrap()
            .iter()
            .map(|p| p.position_amt)
            .sum();
        assert_eq!(held, "0.01".parse::<Decimal>().unwrap(), "left as it was");
    });
}

#[test]
fn doctor_refuses_live_without_the_explicit_flag() {
    let sim = sim();
    let out = Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(["doctor", "--exchange", "live"])
        .env("QT_EXCHANGE_REST_URL", sim.rest_url())
        .env("QT_EXCHANGE_WS_URL", sim.ws_url())
        .env("QT_API_KEY", KEY)
        .env("QT_API_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--i-understand-live"), "{err}");
    assert!(stdout(&out).is_empty(), "no check ran");
    let c = client(&sim);
    rt().block_on(async {
        c.sync_time().await.unwrap();
        assert_eq!(
            c.account().await.unwrap().total_wallet_balance,
            Decimal::from(10_000)
        );
    });
}
