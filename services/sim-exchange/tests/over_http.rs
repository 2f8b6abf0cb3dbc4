//! The simulator over real HTTP and WebSocket, driven by hand-signed requests: order lifecycles
//! on replayed prices, user data events, partial fills, unknown outcomes, rate limits, Binance
//! errors, WebSocket drops, listenKey expiry, snapshots, and malformed input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_events::clock::Clock;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn is_order_update(v: &Value, cid: &str, exec: &str) -> bool {
    v["e"] == "ORDER_TRADE_UPDATE" && v["o"]["c"] == cid && v["o"]["x"] == exec
}

#[tokio::test]
async fn market_order_fills_and_user_stream_reports_new_trade_and_account_update() {
    let sim = start(replay_config()).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.010"),
            ("newClientOrderId", "mkt-1"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "FILLED");
    assert_eq!(r.body["executedQty"], "0.01");
    let st = sim.state().await;
    let s = &st["symbols"]["BTCUSDT"];
    let avg = field_dec(&r.body, "avgPrice");
    assert!(
        avg >= field_dec(s, "low") && avg <= field_dec(s, "high"),
        "fill {avg} outside candle {s}"
    );
    assert!(
        avg >= field_dec(s, "lastPrice"),
        "a buy pays slippage, never better than last"
    );

    wait_event(&mut ws, |v| is_order_update(v, "mkt-1", "NEW")).await;
    let trade = wait_event(&mut ws, |v| is_order_update(v, "mkt-1", "TRADE")).await;
    assert_eq!(trade["o"]["X"], "FILLED");
    assert!(
        field_dec(&trade["o"], "n") > Decimal::ZERO,
        "taker fee charged"
    );
    let acct = wait_event(&mut ws, |v| v["e"] == "ACCOUNT_UPDATE").await;
    assert_eq!(acct["a"]["P"][0]["pa"], "0.01");
    assert_eq!(sim.position("BTCUSDT").await, dec("0.01"));
    let bal = sim.signed(Method::GET, "/fapi/v2/balance", &[]).await;
    assert!(
        field_dec(&bal.body[0], "balance") < dec("10000"),
        "fee left the wallet"
    );
    sim.stop().await;
}

#[tokio::test]
async fn limit_order_rests_then_fills_as_maker_when_replayed_prices_reach_it() {
    let sim = start(replay_config()).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    let st = sim.state().await;
    let last = field_dec(&st["symbols"]["BTCUSDT"], "lastPrice");
    let price = ((last * dec("0.999")) * Decimal::TEN).floor() / Decimal::TEN;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.010"),
            ("price", &price.to_string()),
            ("newClientOrderId", "lim-1"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "NEW");
    let mut filled = None;
    for _ in 0..2_000 {
        let st = sim.step(1).await;
        let low = field_dec(&st["state"]["symbols"]["BTCUSDT"], "low");
        let q = sim
            .signed(
                Method::GET,
                "/fapi/v1/order",
                &[("symbol", "BTCUSDT"), ("origClientOrderId", "lim-1")],
            )
            .await;
        if q.body["status"] == "FILLED" {
            assert!(
                low <= price,
                "filled although the candle low {low} stayed above {price}"
            );
            filled = Some(q.body);
            break;
        }
        assert!(
            low > price,
            "candle reached {price} (low {low}) but the order did not fill"
        );
    }
    let filled = filled.expect("price never reached the limit in the replay");
    assert!(field_dec(&filled, "avgPrice") <= price);
    let trade = wait_event(&mut ws, |v| is_order_update(v, "lim-1", "TRADE")).await;
    assert_eq!(trade["o"]["m"], true, "a resting limit fills as maker");
    sim.stop().await;
}

#[tokio::test]
async fn stop_and_take_profit_trigger_on_replayed_prices_and_report_algo_updates() {
    let sim = start(replay_config()).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.020"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let st = sim.state().await;
    let last = field_dec(&st["symbols"]["BTCUSDT"], "lastPrice");
    let round = |p: Decimal| (p * Decimal::TEN).round() / Decimal::TEN;
    let stop = round(last * dec("0.995"));
    let tp = round(last * dec("1.005"));
    for (typ, trig, cid) in [
        ("STOP_MARKET", stop, "sl-1"),
        ("TAKE_PROFIT_MARKET", tp, "tp-1"),
    ] {
        let r = sim
            .signed(
                Method::POST,
                "/fapi/v1/algoOrder",
                &[
                    ("algoType", "CONDITIONAL"),
                    ("symbol", "BTCUSDT"),
                    ("side", "SELL"),
                    ("type", typ),
                    ("triggerPrice", &trig.to_string()),
                    ("closePosition", "true"),
                    ("workingType", "CONTRACT_PRICE"),
                    ("clientAlgoId", cid),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["algoStatus"], "NEW");
        assert_eq!(r.body["clientAlgoId"], cid);
        wait_event(&mut ws, |v| {
            v["e"] == "ALGO_UPDATE" && v["o"]["caid"] == cid && v["o"]["X"] == "NEW"
        })
        .await;
    }
    // The plain endpoint refuses conditional types.
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "STOP_MARKET"),
            ("quantity", "0.01"),
            ("stopPrice", "1000"),
        ])
        .await;
    assert_eq!(r.code(), -4120);
    // The operator's view shows the position and both conditional orders, and costs no
    // request weight.
    let used = |r: &common::Reply| -> u32 {
        r.headers["x-mbx-used-weight-1m"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = used(&sim.get("/fapi/v1/ping").await);
    let book = sim.get("/sim/book").await.body;
    let acct = &book["accounts"][0];
    assert_eq!(acct["positions"][0]["symbol"], "BTCUSDT");
    assert_eq!(acct["positions"][0]["positionAmt"], "0.02");
    let types: Vec<&str> = acct["openAlgoOrders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["STOP_MARKET", "TAKE_PROFIT_MARKET"]);
    assert_eq!(acct["openAlgoOrders"][0]["closePosition"], true);
    assert_eq!(acct["openAlgoOrders"][0]["side"], "SELL");
    let after = used(&sim.get("/fapi/v1/ping").await);
    assert_eq!(after, before + 1, "only the second ping counted");

    let mut fired = None;
    for _ in 0..3_000 {
        let st = sim.step(1).await;
        let s = &st["state"]["symbols"]["BTCUSDT"];
        let (low, high) = (field_dec(s, "low"), field_dec(s, "high"));
        if low <= stop || high >= tp {
            fired = Some(if low <= stop { "sl-1" } else { "tp-1" });
            break;
        }
    }
    let fired = fired.expect("neither level reached in the replay");
    let other = if fired == "sl-1" { "tp-1" } else { "sl-1" };
    let trig = wait_event(&mut ws, |v| {
        v["e"] == "ALGO_UPDATE" && v["o"]["caid"] == fired && v["o"]["X"] == "TRIGGERED"
    })
    .await;
    let actual = trig["o"]["ai"].as_str().unwrap().to_string();
    assert!(!actual.is_empty());
    let fill = wait_event(&mut ws, |v| is_order_update(v, fired, "TRADE")).await;
    assert_eq!(fill["o"]["X"], "FILLED");
    assert_eq!(fill["o"]["i"].to_string(), actual);
    wait_event(&mut ws, |v| {
        v["e"] == "ALGO_UPDATE" && v["o"]["caid"] == fired && v["o"]["X"] == "FINISHED"
    })
    .await;
    assert_eq!(sim.position("BTCUSDT").await, Decimal::ZERO);
    let q = sim
        .signed(
            Method::GET,
            "/fapi/v1/algoOrder",
            &[("clientAlgoId", fired)],
        )
        .await;
    assert_eq!(q.body["algoStatus"], "FINISHED");
    // The other protective order is still armed; cancel it.
    let c = sim
        .signed(
            Method::DELETE,
            "/fapi/v1/algoOrder",
            &[("clientAlgoId", other)],
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    let open = sim
        .signed(Method::GET, "/fapi/v1/openAlgoOrders", &[])
        .await;
    assert_eq!(open.body, json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn mark_price_stop_triggers_when_the_test_moves_the_mark() {
    let sim = start(replay_config()).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("type", "MARKET"),
        ("quantity", "0.010"),
    ])
    .await;
    let st = sim.state().await;
    let last = field_dec(&st["symbols"]["BTCUSDT"], "lastPrice");
    let trig = (last * dec("1.01")).round_dp(1);
    let r = sim
        .signed(
            Method::POST,
            "/fapi/v1/algoOrder",
            &[
                ("algoType", "CONDITIONAL"),
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "STOP_MARKET"),
                ("triggerPrice", &trig.to_string()),
                ("quantity", "0.010"),
                ("reduceOnly", "true"),
                ("workingType", "MARK_PRICE"),
                ("clientAlgoId", "short-sl"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Below the trigger: nothing.
    sim.control(
        &format!("/sim/mark?symbol=BTCUSDT&price={}", trig - Decimal::ONE),
        None,
    )
    .await;
    assert_eq!(sim.position("BTCUSDT").await, dec("-0.01"));
    sim.control(&format!("/sim/mark?symbol=BTCUSDT&price={trig}"), None)
        .await;
    let fill = wait_event(&mut ws, |v| is_order_update(v, "short-sl", "TRADE")).await;
    assert_eq!(field_dec(&fill["o"], "L"), trig);
    assert_eq!(fill["o"]["ot"], "STOP_MARKET");
    assert_eq!(sim.position("BTCUSDT").await, Decimal::ZERO);
    sim.stop().await;
}

#[tokio::test]
async fn large_order_fills_partially_against_candle_volume_and_completes_on_later_candles() {
    let mut cfg = replay_config();
    cfg.fill_model.max_volume_share = dec("0.0005");
    let sim = start(cfg).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.200"),
            ("newClientOrderId", "big-1"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "PARTIALLY_FILLED", "{}", r.body);
    let first = field_dec(&r.body, "executedQty");
    assert!(first > Decimal::ZERO && first < dec("0.2"));
    let ev = wait_event(&mut ws, |v| is_order_update(v, "big-1", "TRADE")).await;
    assert_eq!(ev["o"]["X"], "PARTIALLY_FILLED");
    let mut done = false;
    for _ in 0..50 {
        sim.step(1).await;
        let q = sim
            .signed(
                Method::GET,
                "/fapi/v1/order",
                &[("symbol", "BTCUSDT"), ("origClientOrderId", "big-1")],
            )
            .await;
        if q.body["status"] == "FILLED" {
            done = true;
            break;
        }
    }
    assert!(done, "remainder never filled");
    wait_event(&mut ws, |v| {
        is_order_update(v, "big-1", "TRADE") && v["o"]["X"] == "FILLED"
    })
    .await;
    assert_eq!(sim.position("BTCUSDT").await, dec("0.2"));
    sim.stop().await;
}

#[tokio::test]
async fn lost_response_is_resolved_by_query_without_a_duplicate_order() {
    let sim = start(replay_config()).await;
    sim.control(
        "/sim/faults",
        Some(json!({"loseNext": 1, "lostResponseMs": 400})),
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(150))
        .build()
        .unwrap();
    let ts = now_ms();
    let q = format!(
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010&newClientOrderId=intent-42&recvWindow=1000&timestamp={ts}"
    );
    let url = format!(
        "{}/fapi/v1/order?{q}&signature={}",
        sim.base,
        sign(SECRET, &q)
    );
    let sent = client.post(&url).header("X-MBX-APIKEY", KEY).send().await;
    assert!(sent.is_err(), "the response should have been lost");
    // Resending the very same request after its recvWindow is refused, so it cannot duplicate.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let again = sim
        .http
        .post(&url)
        .header("X-MBX-APIKEY", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], -1021);
    // The protocol: query by client id past the fence, adopt what is found.
    let found = sim
        .signed(
            Method::GET,
            "/fapi/v1/order",
            &[("symbol", "BTCUSDT"), ("origClientOrderId", "intent-42")],
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["status"], "FILLED");
    let all = sim
        .signed(Method::GET, "/fapi/v1/allOrders", &[("symbol", "BTCUSDT")])
        .await;
    let n = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["clientOrderId"] == "intent-42")
        .count();
    assert_eq!(n, 1);
    assert_eq!(sim.position("BTCUSDT").await, dec("0.01"));
    // An id that never reached the exchange is -2013: safe to resend.
    let missing = sim
        .signed(
            Method::GET,
            "/fapi/v1/order",
            &[("symbol", "BTCUSDT"), ("origClientOrderId", "intent-43")],
        )
        .await;
    assert_eq!(missing.code(), -2013);
    sim.stop().await;
}

#[tokio::test]
async fn injected_5xx_fail_without_side_effects_and_latency_is_added() {
    let sim = start(replay_config()).await;
    sim.control("/sim/faults", Some(json!({"failNext": 2})))
        .await;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.010"),
        ])
        .await;
    assert_eq!(r.status, 503);
    let r = sim.get("/fapi/v1/time").await;
    assert_eq!(r.status, 503);
    assert_eq!(sim.position("BTCUSDT").await, Decimal::ZERO);
    let r = sim.get("/fapi/v1/time").await;
    assert_eq!(r.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_waiting_it_out_succeeds() {
    // A frozen server clock keeps the rate windows from rolling mid-test.
    let clock = qt_events::clock::ManualClock::new(now_ms());
    let mut cfg = replay_config();
    cfg.clock = std::sync::Arc::new(clock.clone());
    let sim = start(cfg).await;
    let r = sim.get("/fapi/v1/ping").await;
    assert_eq!(r.headers["x-mbx-used-weight-1m"], "1");
    sim.control("/sim/limits", Some(json!({"weightPerMinute": 5, "ordersPer10s": 2, "ordersPerMinute": 100, "banAfter429s": 3, "banSeconds": 120}))).await;
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(sim.get("/fapi/v1/ping").await);
    }
    assert!(replies.iter().take(5).all(|r| r.status == 200));
    let limited = &replies[5];
    assert_eq!((limited.status, limited.code()), (429, -1003));
    let retry: i64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Backing off for Retry-After clears it.
    clock.advance(retry * 1_000);
    assert_eq!(sim.get("/fapi/v1/ping").await.status, 200);
    // Ignoring 429s earns a 418 ban with its own Retry-After.
    for _ in 0..8 {
        sim.get("/fapi/v1/ping").await;
    }
    let banned = sim.get("/fapi/v1/ping").await;
    assert_eq!(banned.status, 418);
    assert!(banned.headers.contains_key("retry-after"));

    // Order count per 10 s, per account.
    sim.control(
        "/sim/limits",
        Some(json!({"weightPerMinute": 0, "ordersPer10s": 2, "ordersPerMinute": 100})),
    )
    .await;
    let p = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.010"),
    ];
    let order = |ts: i64| sim.signed_as(KEY, SECRET, Method::POST, "/fapi/v1/order", &p, ts);
    let a = order(clock.now_ms()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["x-mbx-order-count-10s"], "1");
    assert_eq!(order(clock.now_ms()).await.status, 200);
    let c = order(clock.now_ms()).await;
    assert_eq!((c.status, c.code()), (429, -1015));
    let retry: i64 = c.headers["retry-after"].to_str().unwrap().parse().unwrap();
    clock.advance(retry * 1_000);
    assert_eq!(order(clock.now_ms()).await.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn refusals_use_binance_codes() {
    let sim = start(replay_config()).await;
    let base = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET")];
    let with = |extra: &'static [(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (with(&[("quantity", "50")]), -2019),
        (with(&[("quantity", "0.001")]), -4164),
        (with(&[("quantity", "0.0101")]), -1111),
        (with(&[("quantity", "abc")]), -1102),
        (with(&[]), -1102),
        (
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.01"),
                ("price", "20000.05"),
            ],
            -1111,
        ),
        (
            vec![
                ("symbol", "NOPEUSDT"),
                ("side", "BUY"),
                ("type", "MARKET"),
                ("quantity", "1"),
            ],
            -1121,
        ),
        (
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "UP"),
                ("type", "MARKET"),
                ("quantity", "1"),
            ],
            -1117,
        ),
        (
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "WHATEVER"),
                ("quantity", "1"),
            ],
            -1116,
        ),
        (with(&[("quantity", "0.01"), ("reduceOnly", "true")]), -2022),
        (
            with(&[("quantity", "0.01"), ("positionSide", "LONG")]),
            -4061,
        ),
        (
            with(&[("quantity", "0.01"), ("newClientOrderId", "bad*id")]),
            -1100,
        ),
        (
            with(&[
                ("quantity", "0.01"),
                (
                    "newClientOrderId",
                    "0123456789012345678901234567890123456789",
                ),
            ]),
            -4015,
        ),
    ];
    for (params, code) in cases {
        let r = sim.order(&params).await;
        assert_eq!(r.code(), code, "{params:?} → {}", r.body);
        assert_eq!(r.status, 400);
    }
    // Duplicate client id among open orders.
    let lim = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.010"),
        ("price", "20000"),
        ("newClientOrderId", "dup"),
    ];
    assert_eq!(sim.order(&lim).await.status, 200);
    assert_eq!(sim.order(&lim).await.code(), -4116);
    // Post-only that would take.
    let gtx = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTX"),
        ("quantity", "0.010"),
        ("price", "90000"),
    ];
    assert_eq!(sim.order(&gtx).await.code(), -5022);
    // Authentication.
    let p = [("symbol", "BTCUSDT")];
    let bad_sig = sim
        .signed_as(
            KEY,
            "wrong-secret",
            Method::GET,
            "/fapi/v1/openOrders",
            &p,
            now_ms(),
        )
        .await;
    assert_eq!((bad_sig.status, bad_sig.code()), (400, -1022));
    let stale = sim
        .signed_as(
            KEY,
            SECRET,
            Method::GET,
            "/fapi/v1/openOrders",
            &p,
            now_ms() - 60_000,
        )
        .await;
    assert_eq!((stale.status, stale.code()), (400, -1021));
    let ahead = sim
        .signed_as(
            KEY,
            SECRET,
            Method::GET,
            "/fapi/v1/openOrders",
            &p,
            now_ms() + 5_000,
        )
        .await;
    assert_eq!(ahead.code(), -1021);
    let unknown = sim
        .signed_as(
            "nobody",
            SECRET,
            Method::GET,
            "/fapi/v1/openOrders",
            &p,
            now_ms(),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (401, -2015));
    let nokey = sim
        .get("/fapi/v1/openOrders?symbol=BTCUSDT&timestamp=1&signature=00")
        .await;
    assert_eq!(nokey.code(), -2014);
    let nots = sim
        .http
        .get(format!(
            "{}/fapi/v1/openOrders?symbol=BTCUSDT&signature=00",
            sim.base
        ))
        .header("X-MBX-APIKEY", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(nots.status(), 400);
    // Algo: immediate trigger, cancel unknown.
    let last = field_dec(&sim.state().await["symbols"]["BTCUSDT"], "lastPrice");
    let above = (last * dec("1.1")).round_dp(1).to_string();
    let r = sim
        .signed(
            Method::POST,
            "/fapi/v1/algoOrder",
            &[
                ("algoType", "CONDITIONAL"),
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "STOP_MARKET"),
                ("triggerPrice", &above),
                ("quantity", "0.01"),
            ],
        )
        .await;
    assert_eq!(r.code(), -2021);
    let r = sim
        .signed(
            Method::DELETE,
            "/fapi/v1/order",
            &[("symbol", "BTCUSDT"), ("origClientOrderId", "never")],
        )
        .await;
    assert_eq!(r.code(), -2011);
    sim.stop().await;
}

#[tokio::test]
async fn market_streams_survive_a_drop_by_resubscribing() {
    let sim = start(replay_config()).await;
    let mut ws = sim.market_ws().await;
    subscribe(&mut ws, &["btcusdt@kline_5m", "btcusdt@markPrice"]).await;
    sim.step(1).await;
    let st = sim.state().await;
    let k = wait_event(&mut ws, |v| v["e"] == "kline").await;
    assert_eq!(k["k"]["x"], true);
    assert_eq!(k["k"]["t"], st["symbols"]["BTCUSDT"]["candleOpenTime"]);
    sim.control("/sim/ws/drop", None).await;
    assert!(
        next_json(&mut ws).await.is_none() || next_json(&mut ws).await.is_none(),
        "connection should end"
    );
    let mut ws = sim.market_ws().await;
    subscribe(&mut ws, &["btcusdt@kline_5m"]).await;
    sim.step(1).await;
    let k2 = wait_event(&mut ws, |v| v["e"] == "kline").await;
    assert_eq!(
        k2["k"]["t"].as_i64().unwrap(),
        k["k"]["t"].as_i64().unwrap() + 300_000
    );
    // Combined stream form.
    let (mut c, _) = tokio_tungstenite::connect_async(format!(
        "{}/market/stream?streams=btcusdt@kline_1h/btcusdt@markPrice",
        sim.ws_base
    ))
    .await
    .unwrap();
    sim.step(12).await;
    let m = wait_event(&mut c, |v| v["stream"] == "btcusdt@kline_1h").await;
    assert_eq!(m["data"]["k"]["i"], "1h");
    sim.stop().await;
}

#[tokio::test]
async fn listen_key_expiry_ends_the_stream_and_a_new_key_restores_it() {
    let sim = start(replay_config()).await;
    let lk = sim.listen_key().await;
    assert_eq!(
        sim.listen_key().await,
        lk,
        "an active key is returned again"
    );
    let mut ws = sim.user_ws(&lk).await;
    sim.control("/sim/listenKey/expire", None).await;
    let ev = wait_event(&mut ws, |v| v["e"] == "listenKeyExpired").await;
    assert_eq!(ev["listenKey"], lk.as_str());
    let put = sim
        .http
        .put(format!("{}/fapi/v1/listenKey", sim.base))
        .header("X-MBX-APIKEY", KEY)
        .send()
        .await
        .unwrap();
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["code"], -1125);
    let refused =
        tokio_tungstenite::connect_async(format!("{}/private/ws?listenKey={lk}", sim.ws_base))
            .await;
    assert!(refused.is_err(), "an expired key cannot connect");
    let lk2 = sim.listen_key().await;
    assert_ne!(lk2, lk);
    let mut ws = sim.user_ws(&lk2).await;
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.010"),
        ("newClientOrderId", "after-expiry"),
    ])
    .await;
    wait_event(&mut ws, |v| is_order_update(v, "after-expiry", "TRADE")).await;
    sim.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = replay_config();
    cfg.state_dir = Some(dir.path().to_path_buf());
    let sim = start(cfg.clone()).await;
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.030"),
    ])
    .await;
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.010"),
        ("price", "20000"),
        ("newClientOrderId", "rest-1"),
    ])
    .await;
    sim.signed(
        Method::POST,
        "/fapi/v1/leverage",
        &[("symbol", "BTCUSDT"), ("leverage", "7")],
    )
    .await;
    sim.step(3).await;
    let before = sim.state().await["symbols"]["BTCUSDT"]["cursor"].clone();
    let wallet = sim.signed(Method::GET, "/fapi/v2/balance", &[]).await.body[0]["balance"].clone();
    sim.stop().await;

    let sim = start(cfg).await;
    assert_eq!(sim.state().await["symbols"]["BTCUSDT"]["cursor"], before);
    assert_eq!(sim.position("BTCUSDT").await, dec("0.03"));
    let open = sim
        .signed(Method::GET, "/fapi/v1/openOrders", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(open.body[0]["clientOrderId"], "rest-1");
    assert_eq!(
        sim.signed(Method::GET, "/fapi/v2/balance", &[]).await.body[0]["balance"],
        wallet
    );
    let risk = sim
        .signed(
            Method::GET,
            "/fapi/v2/positionRisk",
            &[("symbol", "BTCUSDT")],
        )
        .await;
    assert_eq!(risk.body[0]["leverage"], "7");
    // New orders do not reuse ids.
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "MARKET"),
            ("quantity", "0.010"),
            ("reduceOnly", "true"),
        ])
        .await;
    assert!(r.body["orderId"].as_u64().unwrap() > open.body[0]["orderId"].as_u64().unwrap());
    sim.stop().await;
}

#[tokio::test]
async fn liquidation_closes_the_position_when_margin_runs_out() {
    let mut cfg = replay_config();
    cfg.initial_balance = dec("200");
    let sim = start(cfg).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    sim.signed(
        Method::POST,
        "/fapi/v1/leverage",
        &[("symbol", "BTCUSDT"), ("leverage", "50")],
    )
    .await;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.300"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let last = field_dec(&sim.state().await["symbols"]["BTCUSDT"], "lastPrice");
    sim.control(
        &format!(
            "/sim/mark?symbol=BTCUSDT&price={}",
            (last * dec("0.97")).round_dp(1)
        ),
        None,
    )
    .await;
    let liq = wait_event(&mut ws, |v| {
        v["e"] == "ORDER_TRADE_UPDATE" && v["o"]["x"] == "CALCULATED"
    })
    .await;
    assert_eq!(liq["o"]["o"], "LIQUIDATION");
    assert_eq!(sim.position("BTCUSDT").await, Decimal::ZERO);
    let bal = sim.signed(Method::GET, "/fapi/v2/balance", &[]).await;
    assert!(field_dec(&bal.body[0], "balance") >= Decimal::ZERO);
    sim.stop().await;
}

#[tokio::test]
async fn market_data_endpoints_serve_history_up_to_simulated_now() {
    let sim = start(replay_config()).await;
    let k = sim
        .get("/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=1000")
        .await;
    let rows = k.body.as_array().unwrap();
    assert_eq!(rows.len(), 300, "warm-up history");
    let st = sim.state().await;
    assert_eq!(
        rows.last().unwrap()[0],
        st["symbols"]["BTCUSDT"]["candleOpenTime"]
    );
    let h = sim
        .get("/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=3")
        .await;
    assert_eq!(h.body.as_array().unwrap().len(), 3);
    assert_eq!(
        sim.get("/fapi/v1/klines?symbol=BTCUSDT&interval=7m")
            .await
            .code(),
        -1120
    );
    let info = sim.get("/fapi/v1/exchangeInfo").await;
    let filters = &info.body["symbols"][0]["filters"];
    assert!(
        filters
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["filterType"] == "MIN_NOTIONAL" && f["notional"] == "100")
    );
    let t = sim.get("/fapi/v1/ticker/24hr?symbol=BTCUSDT").await;
    assert_eq!(t.body["lastPrice"], st["symbols"]["BTCUSDT"]["lastPrice"]);
    let m = sim.get("/fapi/v1/premiumIndex?symbol=BTCUSDT").await;
    assert_eq!(m.body["markPrice"], st["symbols"]["BTCUSDT"]["markPrice"]);
    assert_eq!(sim.get("/health/ready").await.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn arbitrary_requests_get_binance_errors_and_never_crash_the_server() {
    use rand::{Rng, SeedableRng};
    let sim = start(replay_config()).await;
    sim.control(
        "/sim/limits",
        Some(json!({"weightPerMinute": 0, "ordersPer10s": 0, "ordersPerMinute": 0})),
    )
    .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let paths = [
        "/fapi/v1/order",
        "/fapi/v1/algoOrder",
        "/fapi/v1/klines",
        "/fapi/v1/openOrders",
        "/fapi/v1/listenKey",
        "/fapi/v2/account",
        "/fapi/v1/leverage",
        "/fapi/v1/allOrders",
    ];
    let names = [
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "timeInForce",
        "triggerPrice",
        "callbackRate",
        "closePosition",
        "reduceOnly",
        "interval",
        "limit",
        "startTime",
        "leverage",
        "algoType",
        "newClientOrderId",
        "orderId",
        "activatePrice",
    ];
    let values = [
        "BTCUSDT",
        "BUY",
        "SELL",
        "MARKET",
        "LIMIT",
        "STOP_MARKET",
        "TRAILING_STOP_MARKET",
        "CONDITIONAL",
        "true",
        "-1",
        "0",
        "1e9",
        "99999999999999999999999999999",
        "0.0000000001",
        "%FF%00",
        "",
        "GTX",
        "5m",
        "NaN",
        "\u{1F600}",
        "30000",
        "0.010",
    ];
    for i in 0..300 {
        let n = rng.random_range(0..8);
        let mut q: Vec<String> = (0..n)
            .map(|_| {
                format!(
                    "{}={}",
                    names[rng.random_range(0..names.len())],
                    values[rng.random_range(0..values.len())]
                )
            })
            .collect();
        if i % 3 == 0 {
            let junk: String = (0..rng.random_range(0..40))
                .map(|_| char::from(rng.random_range(0x21u8..0x7f)))
                .collect();
            q.push(junk.replace('#', ""));
        }
        let q = q.join("&");
        let path = paths[rng.random_range(0..paths.len())];
        let method = [Method::GET, Method::POST, Method::DELETE, Method::PUT]
            [rng.random_range(0..4)]
        .clone();
        let signed_q = format!("{q}&timestamp={}", now_ms());
        let url = format!(
            "{}{path}?{signed_q}&signature={}",
            sim.base,
            sign(SECRET, &signed_q)
        );
        let Ok(resp) = sim
            .http
            .request(method, &url)
            .header("X-MBX-APIKEY", KEY)
            .send()
            .await
        else {
            continue;
        };
        let status = resp.status().as_u16();
        assert!(status < 500, "{url} → {status}");
        if status != 200 {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(
                body["code"].as_i64().is_some_and(|c| c < 0),
                "{url} → {body}"
            );
        }
    }
    assert_eq!(sim.get("/health/live").await.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn trailing_stop_follows_the_mark_and_fires_on_the_callback() {
    let sim = start(replay_config()).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.010"),
    ])
    .await;
    let last = field_dec(&sim.state().await["symbols"]["BTCUSDT"], "lastPrice");
    let r = sim
        .signed(
            Method::POST,
            "/fapi/v1/algoOrder",
            &[
                ("algoType", "CONDITIONAL"),
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "TRAILING_STOP_MARKET"),
                ("callbackRate", "1"),
                ("quantity", "0.010"),
                ("reduceOnly", "true"),
                ("workingType", "MARK_PRICE"),
                ("clientAlgoId", "trail-1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let peak = (last * dec("1.02")).round_dp(1);
    sim.control(&format!("/sim/mark?symbol=BTCUSDT&price={peak}"), None)
        .await;
    // 0.5 % below the peak: still armed.
    sim.control(
        &format!(
            "/sim/mark?symbol=BTCUSDT&price={}",
            (peak * dec("0.995")).round_dp(1)
        ),
        None,
    )
    .await;
    assert_eq!(sim.position("BTCUSDT").await, dec("0.01"));
    let q = sim
        .signed(
            Method::GET,
            "/fapi/v1/algoOrder",
            &[("clientAlgoId", "trail-1")],
        )
        .await;
    assert_eq!(q.body["algoStatus"], "NEW");
    // 1.2 % below the peak: fires.
    let hit = (peak * dec("0.988")).round_dp(1);
    sim.control(&format!("/sim/mark?symbol=BTCUSDT&price={hit}"), None)
        .await;
    let fill = wait_event(&mut ws, |v| is_order_update(v, "trail-1", "TRADE")).await;
    assert_eq!(field_dec(&fill["o"], "L"), hit);
    assert_eq!(fill["o"]["ot"], "TRAILING_STOP_MARKET");
    assert_eq!(sim.position("BTCUSDT").await, Decimal::ZERO);
    sim.stop().await;
}

#[tokio::test]
async fn oversized_reduce_only_order_closes_the_position_and_never_flips_it() {
    let sim = start(replay_config()).await;
    sim.order(&[
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "MARKET"),
        ("quantity", "0.010"),
    ])
    .await;
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "MARKET"),
            ("quantity", "0.050"),
            ("reduceOnly", "true"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["executedQty"], "0.01");
    assert_eq!(r.body["status"], "EXPIRED");
    assert_eq!(sim.position("BTCUSDT").await, Decimal::ZERO);
    sim.stop().await;
}

#[tokio::test]
async fn ioc_remainder_expires_and_open_order_limit_is_enforced() {
    let sim = start(replay_config()).await;
    let last = field_dec(&sim.state().await["symbols"]["BTCUSDT"], "lastPrice");
    let far = (last * dec("0.5")).round_dp(1).to_string();
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "IOC"),
            ("quantity", "0.010"),
            ("price", &far),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(r.body["status"], "EXPIRED", "{}", r.body);
    for i in 0..200 {
        let r = sim
            .order(&[
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.010"),
                ("price", &far),
                ("newClientOrderId", &format!("many-{i}")),
            ])
            .await;
        assert_eq!(r.status, 200, "order {i}: {}", r.body);
    }
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.010"),
            ("price", &far),
        ])
        .await;
    assert_eq!(r.code(), -2025);
    let c = sim
        .signed(
            Method::DELETE,
            "/fapi/v1/allOpenOrders",
            &[("symbol", "BTCUSDT")],
        )
        .await;
    assert_eq!(c.body["code"], 200);
    let open = sim.signed(Method::GET, "/fapi/v1/openOrders", &[]).await;
    assert_eq!(open.body, json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn replay_advances_on_its_own_when_a_speed_is_set() {
    let mut cfg = replay_config();
    cfg.speed = 30_000.0; // a 5 m candle every 10 ms
    let sim = start(cfg).await;
    let mut ws = sim.market_ws().await;
    subscribe(&mut ws, &["btcusdt@kline_5m"]).await;
    let a = wait_event(&mut ws, |v| v["e"] == "kline").await;
    let b = wait_event(&mut ws, |v| v["e"] == "kline").await;
    assert!(b["k"]["t"].as_i64().unwrap() > a["k"]["t"].as_i64().unwrap());
    sim.stop().await;
}

/// Writes a plain (not gzipped) Binance kline CSV without header: 400 flat candles at 100, then
/// one wide candle (high 110, low 90), then flat again.
fn crafted_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("TESTUSDT-5m.csv");
    let mut s = String::new();
    let t0 = 1_700_000_100_000i64; // a multiple of 5 minutes
    for i in 0..420i64 {
        let t = t0 + i * 300_000;
        let (h, l) = if i == 400 {
            ("110", "90")
        } else {
            ("100.5", "99.5")
        };
        s.push_str(&format!(
            "{t},100,{h},{l},100,1000,{},100000,10,0,0,0\n",
            t + 299_999
        ));
    }
    std::fs::write(&path, s).unwrap();
    path
}

#[tokio::test]
async fn stop_counts_first_when_stop_and_target_lie_inside_one_candle() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = replay_config();
    cfg.source = sim_exchange::MarketSource::Files(crafted_file(dir.path()));
    cfg.symbols = vec!["TESTUSDT".into()];
    cfg.warmup_candles = 400;
    let sim = start(cfg).await;
    let lk = sim.listen_key().await;
    let mut ws = sim.user_ws(&lk).await;
    let r = sim
        .order(&[
            ("symbol", "TESTUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "1"),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (typ, trig, cid) in [("TAKE_PROFIT", "105", "tp"), ("STOP", "95", "sl")] {
        let r = sim
            .signed(
                Method::POST,
                "/fapi/v1/algoOrder",
                &[
                    ("algoType", "CONDITIONAL"),
                    ("symbol", "TESTUSDT"),
                    ("side", "SELL"),
                    ("type", typ),
                    ("triggerPrice", trig),
                    ("price", trig),
                    ("timeInForce", "GTC"),
                    ("quantity", "1"),
                    ("reduceOnly", "true"),
                    ("clientAlgoId", cid),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    sim.step(1).await;
    let fill = wait_event(&mut ws, |v| {
        v["e"] == "ORDER_TRADE_UPDATE"
            && v["o"]["x"] == "TRADE"
            && v["o"]["c"] != Value::Null
            && v["o"]["ot"] != "MARKET"
    })
    .await;
    assert_eq!(fill["o"]["c"], "sl", "the stop must count first: {fill}");
    assert_eq!(fill["o"]["ot"], "STOP");
    assert_eq!(fill["o"]["o"], "LIMIT");
    assert_eq!(field_dec(&fill["o"], "L"), dec("95"));
    let rejected = wait_event(&mut ws, |v| {
        v["e"] == "ALGO_UPDATE" && v["o"]["caid"] == "tp" && v["o"]["X"] != "NEW"
    })
    .await;
    assert_eq!(rejected["o"]["X"], "REJECTED");
    assert_eq!(sim.position("TESTUSDT").await, Decimal::ZERO);
    sim.stop().await;
}

#[tokio::test]
async fn fault_drops_websockets_after_a_delay_and_depth_and_weights_follow_binance() {
    let mut cfg = replay_config();
    cfg.clock = std::sync::Arc::new(qt_events::clock::ManualClock::new(now_ms()));
    let sim = start(cfg).await;
    sim.control("/sim/faults", Some(json!({"wsDropAfterMs": 100})))
        .await;
    let mut ws = sim.market_ws().await;
    assert!(
        next_json(&mut ws).await.is_none(),
        "the connection should be dropped"
    );
    sim.control("/sim/faults", Some(json!({}))).await;
    let d = sim.get("/fapi/v1/depth?symbol=BTCUSDT&limit=5").await;
    assert_eq!(d.body["bids"].as_array().unwrap().len(), 5);
    let best_bid = d.body["bids"][0][0].as_str().map(dec).unwrap();
    let best_ask = d.body["asks"][0][0].as_str().map(dec).unwrap();
    assert!(best_bid < best_ask);
    let k = sim
        .get("/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=1000")
        .await;
    let before: u32 = k.headers["x-mbx-used-weight-1m"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let k = sim
        .get("/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=50")
        .await;
    let after: u32 = k.headers["x-mbx-used-weight-1m"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after - before, 1, "limit < 100 weighs 1");
    sim.stop().await;
}

#[tokio::test]
async fn batch_orders_answer_each_order_or_its_error_in_order() {
    let sim = start(replay_config()).await;
    let batch = json!([
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": "20000", "newClientOrderId": "b1"},
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": "20000.5", "newClientOrderId": "b3"}
    ])
    .to_string();
    // The list is URL-encoded and signed in its encoded form.
    let encoded: String = batch
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let r = sim
        .signed(
            Method::POST,
            "/fapi/v1/batchOrders",
            &[("batchOrders", &encoded)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["clientOrderId"], "b1");
    assert_eq!(items[1]["code"], -4164);
    assert_eq!(items[2]["clientOrderId"], "b3");
    let list = "%5B%22b1%22%2C%22b3%22%2C%22nope%22%5D";
    let c = sim
        .signed(
            Method::DELETE,
            "/fapi/v1/batchOrders",
            &[("symbol", "BTCUSDT"), ("origClientOrderIdList", list)],
        )
        .await;
    let items = c.body.as_array().unwrap();
    assert_eq!(items[0]["status"], "CANCELED");
    assert_eq!(items[1]["status"], "CANCELED");
    assert_eq!(items[2]["code"], -2011);
    sim.stop().await;
}

#[tokio::test]
async fn a_step_can_be_limited_to_some_symbols() {
    let sim = start(sim_exchange::SimConfig {
        source: sim_exchange::MarketSource::Synthetic,
        symbols: vec!["AAAUSDT".into(), "BBBUSDT".into()],
        ..replay_config()
    })
    .await;
    let before = sim.state().await;
    let r = sim
        .control("/sim/step?candles=3&symbols=AAAUSDT", None)
        .await;
    assert_eq!(r["symbolSteps"], 3, "{r}");
    let after = sim.state().await;
    let cursor = |v: &Value, s: &str| v["symbols"][s]["cursor"].as_u64().unwrap();
    assert_eq!(cursor(&after, "AAAUSDT"), cursor(&before, "AAAUSDT") + 3);
    assert_eq!(cursor(&after, "BBBUSDT"), cursor(&before, "BBBUSDT"));
    // An unknown symbol is a clear error, and nothing moved.
    let resp = sim
        .http
        .post(format!("{}/sim/step?symbols=NOPEUSDT", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("NOPEUSDT"));
    assert_eq!(sim.state().await["symbols"], after["symbols"]);
}
