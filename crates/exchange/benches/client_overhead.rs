//! Client overhead per request: what `BinanceClient::new_order` adds (limiter, rounding and
//! filter checks, timestamp, HMAC signature, URL building, header feedback, JSON parse into
//! typed Decimals) beyond a bare reqwest call of the same request to the same server.
//!
//! The server is an in-process axum app on 127.0.0.1 that answers instantly with a fixed order
//! JSON. Raw and client calls are interleaved so both see the same machine state. Also measured
//! without any network: building + signing the parameters and parsing the answer.
//!
//! Run: `cargo bench -p qt-exchange --bench client_overhead` (prints p50/p99 in µs).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use qt_events::Side;
use qt_events::clock::SystemClock;
use qt_exchange::sign::Signer;
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig, Mode, NewOrder, Order};
use rust_decimal_macros::dec;
use secrecy::SecretString;

const ORDER: &str = r#"{"orderId":22542179,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"qt-0123456789abcdef0123456789abcde","price":"43000","avgPrice":"0.00000","origQty":"0.012","executedQty":"0","cumQuote":"0","timeInForce":"GTC","type":"LIMIT","reduceOnly":false,"closePosition":false,"side":"BUY","positionSide":"BOTH","stopPrice":"0","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT","priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0,"updateTime":1566818724722}"#;

const INFO: &str = r#"{"serverTime":1,"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":[
 {"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},
 {"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"1000","stepSize":"0.001"},
 {"filterType":"MIN_NOTIONAL","notional":"100"}]}]}"#;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    qt_exchange::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let app = Router::new()
        .route(
            "/fapi/v1/exchangeInfo",
            axum::routing::get(|| async { INFO }),
        )
        .fallback(|| async {
            (
                [
                    ("content-type", "application/json"),
                    ("x-mbx-used-weight-1m", "1"),
                    ("x-mbx-order-count-10s", "1"),
                    ("x-mbx-order-count-1m", "1"),
                ],
                ORDER,
            )
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut cfg = ExchangeConfig::for_mode(Mode::Paper)
        .with_urls(base.clone(), base.replace("http", "ws"))
        .with_credentials("bench-key", "bench-secret");
    // the bench sends far more orders than Binance's per-10 s budget; lift the order limits
    cfg.order_limit_10s = u32::MAX;
    cfg.order_limit_1m = u32::MAX;
    cfg.weight_limit_1m = u32::MAX;
    let client = BinanceClient::new(cfg, Arc::new(SystemClock)).unwrap();
    client.exchange_info().await.unwrap();
    let raw = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let raw_url = format!(
        "{base}/fapi/v1/order?symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.012&price=43000&timeInForce=GTC&newClientOrderId=qt-0123456789abcdef0123456789abcde&newOrderRespType=RESULT&recvWindow=5000&timestamp=1591702613943&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    );
    let order = NewOrder::limit(
        "BTCUSDT",
        Side::Buy,
        dec!(0.0129),
        dec!(43000.06),
        "qt-0123456789abcdef0123456789abcde",
    );

    let n = 5_000;
    let warm = 500;
    let mut raw_t = Vec::with_capacity(n);
    let mut cli_t = Vec::with_capacity(n);
    for i in 0..(n + warm) {
        let t = Instant::now();
        let r = raw
            .post(&raw_url)
            .header("X-MBX-APIKEY", "bench-key")
            .send()
            .await
            .unwrap();
        let _b = r.bytes().await.unwrap();
        let dr = t.elapsed();
        let t = Instant::now();
        let o = client.new_order(&order).await.unwrap();
        let dc = t.elapsed();
        assert_eq!(o.order_id, 22542179);
        if i >= warm {
            raw_t.push(us(dr));
            cli_t.push(us(dc));
        }
    }
    let (r50, r99) = (pct(&mut raw_t, 0.50), pct(&mut raw_t, 0.99));
    let (c50, c99) = (pct(&mut cli_t, 0.50), pct(&mut cli_t, 0.99));

    // no network: parameters (rounding, checks) + signature + parse of the answer
    let signer = Signer::new(&SecretString::from("bench-secret".to_string())).unwrap();
    let mut cpu_t = Vec::with_capacity(n);
    for _ in 0..(n + warm) {
        let t = Instant::now();
        let mut p = client.order_params(&order).await.unwrap();
        p.push("recvWindow", 5000)
            .push("timestamp", 1591702613943i64);
        p.sign_with(&signer);
        let o: Order = serde_json::from_str(ORDER).unwrap();
        std::hint::black_box((p, o));
        cpu_t.push(us(t.elapsed()));
    }
    cpu_t.drain(..warm);
    let (p50, p99) = (pct(&mut cpu_t, 0.50), pct(&mut cpu_t, 0.99));

    println!("qt-exchange client overhead ({n} requests each, loopback axum server, 2 workers)");
    println!("  bare reqwest POST round trip   p50 {r50:8.1} µs  p99 {r99:8.1} µs");
    println!("  BinanceClient::new_order       p50 {c50:8.1} µs  p99 {c99:8.1} µs");
    println!(
        "  added by the client            p50 {:8.1} µs  p99 {:8.1} µs  (difference of percentiles)",
        c50 - r50,
        c99 - r99
    );
    println!("  build+round+sign+parse, no I/O p50 {p50:8.1} µs  p99 {p99:8.1} µs");
}
