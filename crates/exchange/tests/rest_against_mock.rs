//! The REST client against an in-process mock of Binance: signing, rounding, refusals, rate
//! limits, error classes and the resolution of unknown outcomes.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use qt_events::Side;
use qt_events::clock::{ManualClock, SharedClock, SystemClock};
use qt_exchange::*;
use rust_decimal_macros::dec;

fn client_with(
    mock: &Mock,
    clock: SharedClock,
    tweak: impl FnOnce(&mut ExchangeConfig),
) -> BinanceClient {
    let mut cfg = ExchangeConfig::for_mode(Mode::Paper)
        .with_urls(mock.url.clone(), mock.url.replace("http", "ws"))
        .with_credentials(API_KEY, API_SECRET);
    tweak(&mut cfg);
    BinanceClient::new(cfg, clock).unwrap()
}

fn client(mock: &Mock) -> BinanceClient {
    client_with(mock, Arc::new(SystemClock), |_| {})
}

#[tokio::test]
async fn signed_limit_order_is_rounded_signed_and_parsed() {
    let mock = Mock::start().await;
    let c = client(&mock);
    let order = NewOrder::limit(
        "BTCUSDT",
        Side::Buy,
        dec!(0.0129),
        dec!(43000.06),
        "qt-test-1",
    );
    let o = c.new_order(&order).await.unwrap();
    assert_eq!(o.client_order_id, "qt-test-1");
    assert_eq!(o.orig_qty, dec!(0.012));
    let sent = mock.requests("POST", "/fapi/v1/order");
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(r.signature_ok, Some(true), "{}", r.query);
    assert_eq!(r.api_key.as_deref(), Some(API_KEY));
    assert_eq!(r.param("quantity").as_deref(), Some("0.012"));
    // a BUY limit price is rounded down onto the 0.10 grid
    assert_eq!(r.param("price").as_deref(), Some("43000"));
    assert_eq!(r.param("timeInForce").as_deref(), Some("GTC"));
    assert_eq!(r.param("recvWindow").as_deref(), Some("2000"));
    assert!(
        r.query
            .ends_with(&format!("&signature={}", r.param("signature").unwrap()))
    );
}

#[tokio::test]
async fn order_under_min_notional_is_refused_before_any_order_request() {
    let mock = Mock::start().await;
    let c = client(&mock);
    // 0.001 × 43000 (mark price) = 43 < 100
    let e = c
        .new_order(&NewOrder::market(
            "BTCUSDT",
            Side::Buy,
            dec!(0.001),
            "qt-test-2",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ExchangeError::Refused(Refusal::MinNotional { .. })),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Rejected);
    // reduce-only passes the notional rule
    c.new_order(
        &NewOrder::market("BTCUSDT", Side::Sell, dec!(0.001), "qt-test-3").reduce_only(true),
    )
    .await
    .unwrap();
    let sent = mock.requests("POST", "/fapi/v1/order");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].param("newClientOrderId").as_deref(),
        Some("qt-test-3")
    );
    assert_eq!(sent[0].param("reduceOnly").as_deref(), Some("true"));
}

#[tokio::test]
async fn invalid_client_order_id_is_refused_without_a_request() {
    let mock = Mock::start().await;
    let c = client(&mock);
    let e = c
        .new_order(&NewOrder::limit(
            "BTCUSDT",
            Side::Buy,
            dec!(1),
            dec!(43000),
            "bad id!",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ExchangeError::Refused(Refusal::InvalidClientOrderId(_))),
        "{e}"
    );
    assert!(mock.log().is_empty());
}

#[tokio::test]
async fn protective_stop_goes_to_the_algo_endpoint_with_close_position() {
    let mock = Mock::start().await;
    let c = client(&mock);
    let stop =
        NewAlgoOrder::stop_close_position("BTCUSDT", Side::Sell, dec!(41000.04), "qt-stop-1");
    let a = c.new_algo_order(&stop).await.unwrap();
    assert_eq!(a.client_algo_id, "qt-stop-1");
    assert_eq!(a.trigger_price, dec!(41000));
    let sent = mock.requests("POST", "/fapi/v1/algoOrder");
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(r.signature_ok, Some(true));
    for (k, v) in [
        ("algoType", "CONDITIONAL"),
        ("type", "STOP_MARKET"),
        ("triggerPrice", "41000"),
        ("closePosition", "true"),
        ("workingType", "MARK_PRICE"),
        ("priceProtect", "TRUE"),
        ("clientAlgoId", "qt-stop-1"),
    ] {
        assert_eq!(r.param(k).as_deref(), Some(v), "{k} in {}", r.query);
    }
    assert_eq!(r.param("quantity"), None);
    assert!(mock.requests("POST", "/fapi/v1/order").is_empty());
}

#[tokio::test]
async fn business_error_is_a_definite_rejection_sent_once() {
    let mock = Mock::start().await;
    mock.script(
        "POST /fapi/v1/order",
        Scripted::error(400, -2019, "Margin is insufficient."),
    );
    let c = client(&mock);
    let e = c
        .new_order(&NewOrder::limit(
            "BTCUSDT",
            Side::Buy,
            dec!(1),
            dec!(43000),
            "qt-rej-1",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(-2019));
    assert_eq!(e.class(), ErrorClass::Rejected);
    assert_eq!(mock.requests("POST", "/fapi/v1/order").len(), 1);
}

#[tokio::test]
async fn rate_limit_429_holds_every_request_until_retry_after_then_succeeds() {
    let mock = Mock::start().await;
    let mut ban = Scripted::error(429, -1003, "Too many requests");
    ban.headers.push(("retry-after", "1".into()));
    mock.script("GET /fapi/v1/premiumIndex", ban);
    let c = client(&mock);
    let e = c.mark_price("BTCUSDT").await.unwrap_err();
    assert!(
        matches!(
            e,
            ExchangeError::RateLimited {
                status: 429,
                retry_after_ms: 1000
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
    let banned_at = mock.log()[0].at;
    // two different requests, concurrently: both must wait out the ban
    let (a, b) = tokio::join!(c.mark_price("BTCUSDT"), c.server_time());
    assert_eq!(a.unwrap().mark_price, dec!(43000));
    b.unwrap();
    let log = mock.log();
    assert_eq!(log.len(), 3, "exactly one retry of each, no hammering");
    for l in &log[1..] {
        assert!(
            l.at.duration_since(banned_at) >= Duration::from_millis(990),
            "{} {} was sent {:?} after the 429",
            l.method,
            l.path,
            l.at.duration_since(banned_at)
        );
    }
}

#[tokio::test]
async fn used_weight_header_is_followed_by_the_limiter() {
    let mock = Mock::start().await;
    mock.state.lock().unwrap().used_weight = Some(2_000);
    let c = client(&mock);
    c.server_time().await.unwrap();
    assert_eq!(c.rate_limit_usage().weight_1m, 2_000);
}

#[tokio::test]
async fn timestamp_rejection_resyncs_the_clock_and_resends_once() {
    let mock = Mock::start().await;
    {
        let mut st = mock.state.lock().unwrap();
        st.server_skew_ms = 20_000;
        st.check_timestamps = true;
    }
    let c = client(&mock);
    let o = c.query_order("BTCUSDT", "nope").await.unwrap_err();
    // after the resync the query reached the order book: -2013, not -1021
    assert_eq!(o.code(), Some(-2013));
    assert!(
        (c.time_offset_ms() - 20_000).abs() < 1_000,
        "{}",
        c.time_offset_ms()
    );
    assert_eq!(mock.requests("GET", "/fapi/v1/order").len(), 2);
    assert_eq!(mock.requests("GET", "/fapi/v1/time").len(), 1);
}

#[tokio::test]
async fn timeout_is_unknown_then_resolved_by_adopting_the_order_that_reached_the_exchange() {
    let mock = Mock::start().await;
    mock.script(
        "POST /fapi/v1/order",
        Scripted {
            status: 200,
            headers: vec![],
            body: "{}".into(),
            delay: Duration::from_millis(1_500),
            record_order: true,
        },
    );
    let clock = ManualClock::new(now_ms());
    let c = client_with(&mock, Arc::new(clock.clone()), |cfg| {
        cfg.request_timeout_ms = 300
    });
    let e = c
        .new_order(&NewOrder::limit(
            "BTCUSDT",
            Side::Buy,
            dec!(1),
            dec!(43000),
            "qt-unk-1",
        ))
        .await
        .unwrap_err();
    assert!(e.is_unknown_outcome(), "{e}");
    let fence = e.fence().unwrap();
    assert_eq!(fence.recv_window_ms, 2_000);

    // It reached the exchange: found by the first query, without waiting out the window
    // (the clock is never moved).
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        resolve_unknown_order(&c, "BTCUSDT", "qt-unk-1", fence, 1_000),
    )
    .await
    .unwrap()
    .unwrap();
    let Resolution::Found(order) = r else {
        panic!("{r:?}")
    };
    assert_eq!(order.client_order_id, "qt-unk-1");
    let q = mock.requests("GET", "/fapi/v1/order");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].param("origClientOrderId").as_deref(), Some("qt-unk-1"));
    assert_eq!(
        mock.requests("POST", "/fapi/v1/order").len(),
        1,
        "never resent"
    );
}

#[tokio::test]
async fn unknown_5xx_that_never_executed_resolves_to_never_executed() {
    let mock = Mock::start().await;
    mock.script(
        "POST /fapi/v1/order",
        Scripted::error(
            503,
            0,
            "Unknown error, please check your request or try again later.",
        ),
    );
    let clock = ManualClock::new(now_ms());
    let c = client_with(&mock, Arc::new(clock.clone()), |_| {});
    let e = c
        .new_order(&NewOrder::limit(
            "BTCUSDT",
            Side::Buy,
            dec!(1),
            dec!(43000),
            "qt-unk-2",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Unknown, "{e}");
    // Not found before the fence proves nothing (the request may still arrive): it waits.
    let fence = e.fence().unwrap();
    let c2 = c.clone();
    let task = tokio::spawn(async move {
        resolve_unknown_order(&c2, "BTCUSDT", "qt-unk-2", fence, 1_000).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "settled before the fence");
    assert_eq!(mock.requests("GET", "/fapi/v1/order").len(), 1);
    clock.advance(7_000);
    let r = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r, Resolution::NeverExecuted);
    assert_eq!(mock.requests("GET", "/fapi/v1/order").len(), 2);
}

#[tokio::test]
async fn secrets_appear_neither_in_debug_nor_in_errors() {
    let mock = Mock::start().await;
    let c = client(&mock);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(API_KEY) && !dbg.contains(API_SECRET), "{dbg}");
    // a connection that cannot open, a decode error and an API error
    let dead = client_with(&mock, Arc::new(SystemClock), |cfg| {
        cfg.rest_url = "http://127.0.0.1:1".into();
    });
    let e1 = dead.balances().await.unwrap_err();
    assert!(e1.is_retryable(), "{e1}");
    mock.script(
        "GET /fapi/v3/balance",
        Scripted::error(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ),
    );
    let e2 = c.balances().await.unwrap_err();
    let e3 = c.account().await.unwrap_err(); // not mocked: 404
    for e in [e1, e2, e3] {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(API_KEY) && !text.contains(API_SECRET),
            "{text}"
        );
        assert!(!text.contains("signature="), "{text}");
    }
}

#[tokio::test]
async fn listen_key_endpoints_send_the_api_key_without_signing() {
    let mock = Mock::start().await;
    mock.state
        .lock()
        .unwrap()
        .listen_keys
        .push_back("lk-1".into());
    let c = client(&mock);
    assert_eq!(c.create_listen_key().await.unwrap(), "lk-1");
    c.keepalive_listen_key().await.unwrap();
    let log = mock.log();
    assert_eq!(log.len(), 2);
    for l in log {
        assert_eq!(l.api_key.as_deref(), Some(API_KEY));
        assert_eq!(l.signature_ok, None);
    }
}

#[tokio::test]
async fn unknown_algo_order_is_resolved_after_the_fence_by_client_algo_id() {
    let mock = Mock::start().await;
    mock.script(
        "POST /fapi/v1/algoOrder",
        Scripted {
            status: 200,
            headers: vec![],
            body: "{}".into(),
            delay: Duration::from_millis(1_500),
            record_order: true,
        },
    );
    let clock = ManualClock::new(now_ms());
    let c = client_with(&mock, Arc::new(clock.clone()), |cfg| {
        cfg.request_timeout_ms = 300
    });
    let stop = NewAlgoOrder::stop_close_position("BTCUSDT", Side::Sell, dec!(41000), "qt-stop-unk");
    let e = c.new_algo_order(&stop).await.unwrap_err();
    assert!(e.is_unknown_outcome(), "{e}");
    clock.advance(6_100);
    let r = resolve_unknown_algo_order(&c, "qt-stop-unk", e.fence().unwrap(), 1_000)
        .await
        .unwrap();
    let AlgoResolution::Found(a) = r else {
        panic!("{r:?}")
    };
    assert_eq!(a.client_algo_id, "qt-stop-unk");
    let never = resolve_unknown_algo_order(&c, "qt-stop-none", e.fence().unwrap(), 1_000)
        .await
        .unwrap();
    assert_eq!(never, AlgoResolution::NeverExecuted);
}

#[tokio::test]
async fn a_precision_rejection_reloads_exchange_info_for_the_next_order() {
    let mock = Mock::start().await;
    mock.script(
        "POST /fapi/v1/order",
        Scripted::error(
            400,
            -1111,
            "Precision is over the maximum defined for this asset.",
        ),
    );
    let c = client(&mock);
    let o = NewOrder::limit("BTCUSDT", Side::Buy, dec!(1), dec!(43000), "qt-prec-1");
    let e = c.new_order(&o).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Rejected);
    c.new_order(&NewOrder {
        client_order_id: "qt-prec-2".into(),
        ..o
    })
    .await
    .unwrap();
    assert_eq!(mock.requests("GET", "/fapi/v1/exchangeInfo").len(), 2);
}
