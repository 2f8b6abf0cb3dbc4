//! `qtctl status|positions|trades|pnl` as a person runs them: the real binary against a real
//! redis-server and a local HTTP server answering as portfolio-intelligence's API and the
//! services' `/health/ready` do (its documents are the `qt_events::api` types the service
//! serves); unreachable services or Redis give a clear error and exit 1.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use std::collections::BTreeMap;

use qt_events::{Decimal, PortfolioSnapshot, api};
use qt_testkit::RedisServer;
use serde_json::{Value, json};

fn qtctl(redis: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qtctl"))
        .args(args)
        .env("QT_REDIS_URL", redis)
        .env("QT_STREAM_PREFIX", "t:")
        .env_remove("QT_PORTFOLIO_URL")
        .env_remove("QT_SERVICES")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Serves the API's documents (and `/health/ready`) from a thread; returns its base URL.
fn stand_in(ready: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (code, body) = answer(&path, ready);
            let text = body.to_string();
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    base
}

fn to_value<T: serde::Serialize>(t: T) -> Value {
    serde_json::to_value(t).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The documents as portfolio-intelligence builds them: the `qt_events::api` types.
fn position() -> api::PositionView {
    api::PositionView {
        position: api::OpenPosition {
            position_id: "p1".into(),
            symbol: "ETHUSDT".into(),
            side: "SHORT".into(),
            quantity: dec("2"),
            entry_price: dec("2000"),
            realized_pnl: dec("0"),
            fees: dec("0"),
            leverage: 3,
            opened_at: 1,
            model_version: "gbdt-7".into(),
        },
        mark_price: dec("1950"),
        notional: dec("3900"),
        unrealized_pnl: dec("100"),
        unrealized_pct: 0.025,
    }
}

fn trades() -> api::TradesResponse {
    api::TradesResponse {
        trades: vec![api::ClosedTrade {
            position_id: "p0".into(),
            symbol: "BTCUSDT".into(),
            side: "LONG".into(),
            quantity: dec("0.5"),
            entry_price: dec("40000"),
            exit_price: dec("40100"),
            realized_pnl: dec("50"),
            fees: dec("4"),
            net_pnl: dec("46"),
            model_version: "gbdt-7".into(),
            opened_at: 1,
            closed_at: 2,
            reason: "take_profit".into(),
        }],
        fills: vec![],
        rejections: vec![],
    }
}

fn portfolio() -> api::PortfolioResponse {
    api::PortfolioResponse {
        snapshot: PortfolioSnapshot {
            ts: 1,
            equity: dec("10146"),
            wallet_balance: dec("10046"),
            unrealized_pnl: dec("100"),
            realized_pnl_today: dec("46"),
            daily_pnl: dec("146"),
            gross_exposure: dec("3900"),
            net_exposure: dec("-3900"),
            long_exposure: dec("0"),
            short_exposure: dec("3900"),
            open_positions: 1,
        },
        realized_pnl_total: dec("46"),
        unrealized_by_symbol: BTreeMap::from([("ETHUSDT".to_owned(), dec("100"))]),
        long_share: 0.0,
        diversification: 0.0,
        model: None,
        exchange_synced_at: Some(1),
        kill_switch: Some(false),
        drawdown_breaker: None,
        drift: vec![],
    }
}

fn metrics() -> api::MetricsResponse {
    let stats = api::TradeStats {
        trades: 1,
        wins: 1,
        win_rate: Some(1.0),
        net_pnl: dec("46"),
        fees: dec("4"),
        gross_profit: dec("46"),
        total_pnl: dec("46"),
        ..api::TradeStats::default()
    };
    api::MetricsResponse {
        totals: stats.clone(),
        by_symbol: BTreeMap::from([("BTCUSDT".to_owned(), stats.clone())]),
        by_model_version: BTreeMap::from([("gbdt-7".to_owned(), stats)]),
        max_drawdown: api::Drawdown {
            amount: dec("12"),
            fraction: 0.001,
        },
        sharpe: Some(0.5),
        sortino: None,
        realized_pnl_total: dec("46"),
        diversification: 0.0,
        long_share: 0.0,
        equity_curve: vec![(1, dec("10000")), (2, dec("10146"))],
    }
}

fn answer(path: &str, ready: bool) -> (u16, Value) {
    match path.split('?').next().unwrap_or("") {
        "/health/ready" if ready => (
            200,
            json!({"ready": true, "redis": true, "groups": true, "consumers": true}),
        ),
        "/health/ready" => (
            503,
            json!({"ready": false, "redis": true, "groups": true, "consumers": false}),
        ),
        "/api/positions" => (
            200,
            to_value(api::PositionsResponse {
                positions: vec![position()],
            }),
        ),
        "/api/trades" => (200, to_value(trades())),
        "/api/portfolio" => (200, to_value(portfolio())),
        "/api/metrics" => (200, to_value(metrics())),
        _ => (404, json!({"error": "not found"})),
    }
}

#[test]
fn positions_trades_and_pnl_print_tables_and_json() {
    let api = stand_in(true);
    let redis = format!("redis://127.0.0.1:{}", dead_port());

    let o = qtctl(&redis, &["positions", "--api", &api]);
    assert!(o.status.success(), "{}", err(&o));
    let t = out(&o);
    assert!(t.lines().next().unwrap().starts_with("SYMBOL"));
    let row = t.lines().nth(1).unwrap();
    for cell in ["ETHUSDT", "SHORT", "2000", "1950", "100", "2.50%", "gbdt-7"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    let o = qtctl(&redis, &["positions", "--api", &api, "--json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v[0]["symbol"], "ETHUSDT");

    let o = qtctl(&redis, &["trades", "--api", &api, "-n", "5"]);
    assert!(o.status.success(), "{}", err(&o));
    let row = out(&o).lines().nth(1).unwrap().to_owned();
    assert!(
        row.contains("BTCUSDT") && row.contains("46") && row.contains("take_profit"),
        "{row}"
    );

    let o = qtctl(&redis, &["pnl", "--api", &api]);
    assert!(o.status.success(), "{}", err(&o));
    let t = out(&o);
    assert!(t.contains("Equity") && t.contains("10146"), "{t}");
    assert!(t.contains("Win rate") && t.contains("100.00%"), "{t}");
    assert!(t.contains("gbdt-7"), "{t}");
    let o = qtctl(&redis, &["pnl", "--api", &api, "--json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["portfolio"]["snapshot"]["equity"], "10146");
    assert!(v["metrics"].get("equity_curve").is_none());
}

#[test]
fn an_unreachable_api_is_a_clear_error_and_exit_1() {
    let redis = format!("redis://127.0.0.1:{}", dead_port());
    let api = format!("http://127.0.0.1:{}", dead_port());
    for cmd in ["positions", "trades", "pnl"] {
        let o = qtctl(&redis, &[cmd, "--api", &api]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert!(
            err(&o).contains("portfolio-intelligence is unreachable"),
            "{cmd}: {}",
            err(&o)
        );
    }
}

#[test]
fn status_shows_services_and_streams_and_fails_when_something_is_down() {
    let redis = RedisServer::start();
    redis.raw(&["XADD", "t:dlq", "*", "junk", "1"]);
    redis.raw(&[
        "XGROUP",
        "CREATE",
        "t:intents",
        "execution",
        "$",
        "MKSTREAM",
    ]);
    let up = stand_in(true);
    let not_ready = stand_in(false);
    let gone = format!("http://127.0.0.1:{}", dead_port());

    let ok = qtctl(
        &redis.url(),
        &["status", "--services", &format!("execution={up}")],
    );
    assert!(ok.status.success(), "{}", err(&ok));
    let t = out(&ok);
    assert!(t.contains("execution") && t.contains("ready"), "{t}");
    assert!(t.contains("intents") && t.contains("execution 0/0"), "{t}");
    assert!(t.contains("dead letters: 1"), "{t}");

    let bad = qtctl(
        &redis.url(),
        &[
            "status",
            "--services",
            &format!("execution={up},exit-brain={not_ready},clm={gone}"),
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    let t = out(&bad);
    assert!(
        t.contains("exit-brain") && t.contains("consumers not ready"),
        "{t}"
    );
    assert!(t.contains("clm") && t.contains("unreachable"), "{t}");
    assert!(
        err(&bad).contains("not ready: exit-brain, clm"),
        "{}",
        err(&bad)
    );

    let o = qtctl(
        &redis.url(),
        &["status", "--json", "--services", &format!("execution={up}")],
    );
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["services"][0]["ready"], true);
    assert_eq!(v["dead_letters"], 1);

    let no_redis = format!("redis://127.0.0.1:{}", dead_port());
    let o = qtctl(
        &no_redis,
        &["status", "--services", &format!("execution={up}")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("redis is unreachable"), "{}", err(&o));
}
