//! Funding over HTTP and WebSocket against the real simulator: a position held across a
//! funding time of the replay clock pays (long, positive rate) or earns (short) `quantity ×
//! mark × rate`, announced by an `ACCOUNT_UPDATE` with reason `FUNDING_FEE` and listed by
//! `GET /fapi/v1/income`; the rates come from a Binance funding-rate file beside the klines;
//! `premiumIndex` and `fundingRate` report them; a restart from the snapshot neither charges a
//! funding time twice nor skips one; real-time replay charges on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;
use sim_exchange::{ApiKey, FundingSettings, MarketSource, SimConfig};

const LONG_KEY: &str = "long-key";
const LONG_SECRET: &str = "long-secret";
/// 2024-01-01 00:00:00 UTC.
const T0: i64 = 1_704_067_200_000;
const H: i64 = 3_600_000;

/// TESTUSDT 5m candles from 2024-01-01 00:00 UTC, every close 100 (high 100.5, low 99.5), and
/// its funding history beside them (`data/5m/…`, `data/funding/…`): 0.00025 at 08:00,
/// −0.0001 at 16:00. Returns the kline file.
fn crafted_market(dir: &std::path::Path) -> std::path::PathBuf {
    let klines = dir.join("5m");
    std::fs::create_dir_all(&klines).unwrap();
    let mut s = String::from("open_time,open,high,low,close,volume\n");
    for i in 0..300i64 {
        s.push_str(&format!("{},100,100.5,99.5,100,1000\n", T0 + i * 300_000));
    }
    let path = klines.join("TESTUSDT-5m.csv");
    std::fs::write(&path, s).unwrap();
    let funding = dir.join("funding");
    std::fs::create_dir_all(&funding).unwrap();
    std::fs::write(
        funding.join("TESTUSDT-fundingRate.csv"),
        format!(
            "calc_time,funding_interval_hours,last_funding_rate\n{},8,2.5e-04\n{},8,-0.0001\n",
            T0 + 8 * H,
            T0 + 16 * H
        ),
    )
    .unwrap();
    path
}

/// Two accounts on the crafted market, its funding folder found beside the klines as the
/// binary finds it; the market at 07:30 (90 candles closed), stepped by the tests.
fn config(dir: &std::path::Path) -> SimConfig {
    let data = crafted_market(dir);
    SimConfig {
        keys: vec![
            ApiKey {
                key: KEY.into(),
                secret: SECRET.into(),
            },
            ApiKey {
                key: LONG_KEY.into(),
                secret: LONG_SECRET.into(),
            },
        ],
        funding: FundingSettings {
            dir: sim_exchange::funding_dir_beside(&data),
            ..FundingSettings::default()
        },
        source: MarketSource::Files(data),
        symbols: vec!["TESTUSDT".into()],
        speed: 0.0,
        warmup_candles: 90,
        ..SimConfig::default()
    }
}

async fn market_order(sim: &Sim, key: &str, secret: &str, side: &str, qty: &str) {
    let r = sim
        .signed_as(
            key,
            secret,
            Method::POST,
            "/fapi/v1/order",
            &[
                ("symbol", "TESTUSDT"),
                ("side", side),
                ("type", "MARKET"),
                ("quantity", qty),
            ],
            now_ms(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn wallet(sim: &Sim, key: &str, secret: &str) -> rust_decimal::Decimal {
    let r = sim
        .signed_as(key, secret, Method::GET, "/fapi/v2/balance", &[], now_ms())
        .await;
    field_dec(&r.body[0], "balance")
}

async fn funding_income(sim: &Sim, key: &str, secret: &str) -> Vec<Value> {
    let r = sim
        .signed_as(
            key,
            secret,
            Method::GET,
            "/fapi/v1/income",
            &[("incomeType", "FUNDING_FEE")],
            now_ms(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().cloned().unwrap()
}

async fn listen_key_of(sim: &Sim, key: &str) -> String {
    let v: Value = sim
        .http
        .post(format!("{}/fapi/v1/listenKey", sim.base))
        .header("X-MBX-APIKEY", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["listenKey"].as_str().unwrap().to_owned()
}

fn is_funding(v: &Value) -> bool {
    v["e"] == "ACCOUNT_UPDATE" && v["a"]["m"] == "FUNDING_FEE"
}

/// Reads user events until the next `FUNDING_FEE` update; `None` if 5 s pass without events.
async fn next_funding(ws: &mut Ws) -> Option<Value> {
    loop {
        let v = next_json(ws).await?;
        if is_funding(&v) {
            return Some(v);
        }
    }
}

#[tokio::test]
async fn a_long_pays_and_a_short_earns_a_positive_rate_at_the_funding_time_and_income_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(config(dir.path())).await;
    // Before the funding time: premiumIndex announces 08:00 at the file's rate.
    let p = sim.get("/fapi/v1/premiumIndex?symbol=TESTUSDT").await.body;
    assert_eq!(p["nextFundingTime"], T0 + 8 * H);
    assert_eq!(p["lastFundingRate"], "0.00025000");

    market_order(&sim, LONG_KEY, LONG_SECRET, "BUY", "2").await;
    market_order(&sim, KEY, SECRET, "SELL", "3").await;
    let (long0, short0) = (
        wallet(&sim, LONG_KEY, LONG_SECRET).await,
        wallet(&sim, KEY, SECRET).await,
    );
    let mut long_ws = sim.user_ws(&listen_key_of(&sim, LONG_KEY).await).await;
    let mut short_ws = sim.user_ws(&listen_key_of(&sim, KEY).await).await;

    // 07:30 → 07:55: no funding time reached.
    sim.step(5).await;
    assert_eq!(wallet(&sim, LONG_KEY, LONG_SECRET).await, long0);
    assert!(funding_income(&sim, LONG_KEY, LONG_SECRET).await.is_empty());

    // The 07:55 candle closes at 08:00: funding at the mark 100.
    let before = now_ms();
    sim.step(1).await;
    let after = now_ms();
    // Long 2 × 100 × 0.00025 = 0.05 paid; short 3 × 100 × 0.00025 = 0.075 earned.
    let l = next_funding(&mut long_ws)
        .await
        .expect("long FUNDING_FEE update");
    assert_eq!(field_dec(&l["a"]["B"][0], "bc"), dec("-0.05"));
    assert_eq!(field_dec(&l["a"]["B"][0], "wb"), long0 - dec("0.05"));
    assert_eq!(l["a"]["B"][0]["a"], "USDT");
    // A cross position's funding update carries the balance only.
    assert_eq!(l["a"]["P"].as_array().map(Vec::len), Some(0));
    let s = next_funding(&mut short_ws)
        .await
        .expect("short FUNDING_FEE update");
    assert_eq!(field_dec(&s["a"]["B"][0], "bc"), dec("0.075"));
    assert_eq!(
        wallet(&sim, LONG_KEY, LONG_SECRET).await,
        long0 - dec("0.05")
    );
    assert_eq!(wallet(&sim, KEY, SECRET).await, short0 + dec("0.075"));

    let li = funding_income(&sim, LONG_KEY, LONG_SECRET).await;
    assert_eq!(li.len(), 1, "{li:?}");
    assert_eq!(li[0]["symbol"], "TESTUSDT");
    assert_eq!(li[0]["incomeType"], "FUNDING_FEE");
    assert_eq!(li[0]["income"], "-0.05000000");
    assert_eq!(li[0]["asset"], "USDT");
    assert!(li[0]["tranId"].as_u64().is_some());
    let t = li[0]["time"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&t),
        "income time {t} is server time"
    );
    let si = funding_income(&sim, KEY, SECRET).await;
    assert_eq!(si[0]["income"], "0.07500000");
    // Without a type filter the fills' commissions are listed too; the funding entry is there.
    let all = sim
        .signed_as(
            LONG_KEY,
            LONG_SECRET,
            Method::GET,
            "/fapi/v1/income",
            &[("symbol", "TESTUSDT")],
            now_ms(),
        )
        .await
        .body;
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["incomeType"].as_str())
        .collect();
    assert_eq!(kinds, vec!["COMMISSION", "FUNDING_FEE"]);

    // The rates used, and the next one.
    let rates = sim.get("/fapi/v1/fundingRate?symbol=TESTUSDT").await.body;
    let rows: Vec<(i64, &str, &str)> = rates
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["fundingTime"].as_i64().unwrap(),
                r["fundingRate"].as_str().unwrap(),
                r["markPrice"].as_str().unwrap(),
            )
        })
        .collect();
    // 00:00 precedes the file: the default rate.
    assert_eq!(
        rows,
        vec![
            (T0, "0.00010000", "100.00000000"),
            (T0 + 8 * H, "0.00025000", "100.00000000")
        ]
    );
    let p = sim.get("/fapi/v1/premiumIndex?symbol=TESTUSDT").await.body;
    assert_eq!(p["nextFundingTime"], T0 + 16 * H);
    assert_eq!(p["lastFundingRate"], "-0.00010000");

    // 16:00 at −0.0001: the long earns 2 × 100 × 0.0001 = 0.02, the short pays 0.03.
    sim.step(96).await;
    let l = next_funding(&mut long_ws)
        .await
        .expect("second long update");
    assert_eq!(field_dec(&l["a"]["B"][0], "bc"), dec("0.02"));
    let s = next_funding(&mut short_ws)
        .await
        .expect("second short update");
    assert_eq!(field_dec(&s["a"]["B"][0], "bc"), dec("-0.03"));
    assert_eq!(
        wallet(&sim, LONG_KEY, LONG_SECRET).await,
        long0 - dec("0.05") + dec("0.02")
    );
    assert_eq!(
        wallet(&sim, KEY, SECRET).await,
        short0 + dec("0.075") - dec("0.03")
    );
    let li = funding_income(&sim, LONG_KEY, LONG_SECRET).await;
    let amounts: Vec<&str> = li.iter().filter_map(|i| i["income"].as_str()).collect();
    assert_eq!(amounts, vec!["-0.05000000", "0.02000000"]);
    // Flat, the long account pays nothing at 00:00; past the file the default 0.0001
    // applies, which the short earns: 3 × 100 × 0.0001 = 0.03.
    let r = sim
        .signed_as(
            LONG_KEY,
            LONG_SECRET,
            Method::POST,
            "/fapi/v1/order",
            &[
                ("symbol", "TESTUSDT"),
                ("side", "SELL"),
                ("type", "MARKET"),
                ("quantity", "2"),
                ("reduceOnly", "true"),
            ],
            now_ms(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sim.step(96).await;
    let s = next_funding(&mut short_ws)
        .await
        .expect("third short update");
    assert_eq!(field_dec(&s["a"]["B"][0], "bc"), dec("0.03"));
    assert_eq!(funding_income(&sim, LONG_KEY, LONG_SECRET).await.len(), 2);
    sim.stop().await;
}

#[tokio::test]
async fn a_restart_from_the_snapshot_neither_charges_a_funding_time_twice_nor_skips_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.state_dir = Some(state.path().to_path_buf());

    let sim = start(cfg.clone()).await;
    market_order(&sim, LONG_KEY, LONG_SECRET, "BUY", "2").await;
    let w0 = wallet(&sim, LONG_KEY, LONG_SECRET).await;
    sim.step(6).await; // 08:00: −0.05
    assert_eq!(wallet(&sim, LONG_KEY, LONG_SECRET).await, w0 - dec("0.05"));
    sim.stop().await;

    // Restarted right after the charge: 08:00 is settled and is not charged again.
    let sim = start(cfg.clone()).await;
    let st = sim.state().await;
    assert_eq!(st["symbols"]["TESTUSDT"]["fundingSettledUntil"], T0 + 8 * H);
    sim.step(1).await;
    assert_eq!(wallet(&sim, LONG_KEY, LONG_SECRET).await, w0 - dec("0.05"));
    sim.step(94).await; // 15:55
    assert_eq!(funding_income(&sim, LONG_KEY, LONG_SECRET).await.len(), 1);
    sim.stop().await;

    // Restarted just before 16:00: the next candle's close charges it, once.
    let sim = start(cfg).await;
    assert_eq!(
        sim.state().await["symbols"]["TESTUSDT"]["fundingSettledUntil"],
        T0 + 16 * H - 300_000
    );
    sim.step(1).await;
    sim.step(1).await;
    let amounts: Vec<String> = funding_income(&sim, LONG_KEY, LONG_SECRET)
        .await
        .iter()
        .filter_map(|i| i["income"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(amounts, vec!["-0.05000000", "0.02000000"]);
    assert_eq!(
        wallet(&sim, LONG_KEY, LONG_SECRET).await,
        w0 - dec("0.05") + dec("0.02")
    );
    // Transaction ids stay unique across the restarts.
    let ids: Vec<u64> = funding_income(&sim, LONG_KEY, LONG_SECRET)
        .await
        .iter()
        .filter_map(|i| i["tranId"].as_u64())
        .collect();
    assert!(ids[0] < ids[1], "{ids:?}");
    sim.stop().await;
}

#[tokio::test]
async fn real_time_replay_charges_funding_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // 02:30 at start, a 5m candle every 20 ms: 08:00 about 1.3 s later.
    cfg.warmup_candles = 30;
    cfg.speed = 15_000.0;
    let sim = start(cfg).await;
    let mut ws = sim.user_ws(&listen_key_of(&sim, LONG_KEY).await).await;
    market_order(&sim, LONG_KEY, LONG_SECRET, "BUY", "2").await;
    let w0 = wallet(&sim, LONG_KEY, LONG_SECRET).await;
    let first = next_funding(&mut ws).await.expect("a FUNDING_FEE update");
    assert_eq!(field_dec(&first["a"]["B"][0], "bc"), dec("-0.05"));
    assert_eq!(field_dec(&first["a"]["B"][0], "wb"), w0 - dec("0.05"));
    let li = funding_income(&sim, LONG_KEY, LONG_SECRET).await;
    assert_eq!(li[0]["income"], "-0.05000000");
    sim.stop().await;
}

#[tokio::test]
async fn without_a_funding_file_the_default_rate_is_charged_every_eight_hours() {
    // The repo's BTCUSDT candles (no funding folder beside them): 14:15 UTC after the warmup;
    // 16:00 is 21 candles away. The 15:55 candle closes at 29274.28.
    let sim = start(replay_config()).await;
    assert_eq!(
        sim.get("/fapi/v1/premiumIndex?symbol=BTCUSDT").await.body["lastFundingRate"],
        "0.00010000"
    );
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.010"),
    ])
    .await;
    sim.step(20).await;
    assert!(funding_income(&sim, KEY, SECRET).await.is_empty());
    sim.step(1).await;
    // 0.01 × 29274.28 × 0.0001 = 0.029274280.
    let li = funding_income(&sim, KEY, SECRET).await;
    assert_eq!(li.len(), 1);
    assert_eq!(li[0]["income"], "-0.02927428");
    assert_eq!(li[0]["symbol"], "BTCUSDT");
    sim.stop().await;
}
