//! The WebSocket tasks against an in-process tokio-tungstenite server that drops connections:
//! pong replies, reconnect and resubscribe, listenKey re-creation.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use qt_events::clock::SystemClock;
use qt_exchange::ws::{
    MarketEvent, MarketStream, UserEvent, spawn_market_streams, spawn_user_stream,
};
use qt_exchange::{BinanceClient, ExchangeConfig, Mode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

type ServerWs = WebSocketStream<TcpStream>;

/// Accepts connections forever; hands each (request URI, socket) to the test.
async fn ws_server() -> (String, mpsc::Receiver<(String, ServerWs)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let uri = Arc::new(Mutex::new(String::new()));
            let u2 = uri.clone();
            let cb = move |req: &Request, resp: Response| {
                *u2.lock().unwrap() = req.uri().to_string();
                Ok(resp)
            };
            if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await {
                let u = uri.lock().unwrap().clone();
                if tx.send((u, ws)).await.is_err() {
                    return;
                }
            }
        }
    });
    (url, rx)
}

fn fast_ws(cfg: &mut ExchangeConfig) {
    cfg.ws.reconnect_backoff_min_ms = 20;
    cfg.ws.reconnect_backoff_max_ms = 100;
}

async fn next<T: std::fmt::Debug>(rx: &mut mpsc::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no event within 5 s")
        .expect("channel closed")
}

const KLINE: &str = r#"{"stream":"btcusdt@kline_5m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":299999,"s":"BTCUSDT","i":"5m","o":"1","c":"2","h":"3","l":"0.5","v":"10","n":5,"x":true,"q":"20"}}}"#;
const MARK: &str = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":2,"s":"BTCUSDT","p":"43000.5","i":"43001","P":"43000","r":"0.0001","T":3}}"#;

#[tokio::test]
async fn market_stream_answers_pings_and_reconnects_and_resubscribes_after_a_drop() {
    let (ws_url, mut conns) = ws_server().await;
    let mut cfg = ExchangeConfig::for_mode(Mode::Paper).with_urls("http://127.0.0.1:1", ws_url);
    fast_ws(&mut cfg);
    let streams = [
        MarketStream::Kline {
            symbol: "BTCUSDT".into(),
            interval: "5m".into(),
        },
        MarketStream::MarkPrice {
            symbol: "BTCUSDT".into(),
            every_second: true,
        },
    ];
    let (mut rx, handle) = spawn_market_streams(&cfg, &streams, 16);

    let (uri1, mut ws1) = next(&mut conns).await;
    assert_eq!(
        uri1,
        "/market/stream?streams=btcusdt@kline_5m/btcusdt@markPrice@1s"
    );
    assert_eq!(
        next(&mut rx).await,
        MarketEvent::Connected { path: "market" }
    );
    ws1.send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    ws1.send(Message::Text(KLINE.into())).await.unwrap();
    let MarketEvent::Kline(k) = next(&mut rx).await else {
        panic!("expected a kline")
    };
    assert!(k.to_candle_closed().is_some());
    // the pong for our ping
    let pong = tokio::time::timeout(Duration::from_secs(5), ws1.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"hi".to_vec().into()));
    drop(ws1); // the server drops the connection without a close frame

    let (uri2, mut ws2) = next(&mut conns).await;
    assert_eq!(uri2, uri1, "resubscribed to the same streams");
    assert_eq!(
        next(&mut rx).await,
        MarketEvent::Connected { path: "market" }
    );
    ws2.send(Message::Text(MARK.into())).await.unwrap();
    let MarketEvent::MarkPrice(m) = next(&mut rx).await else {
        panic!("expected a mark price")
    };
    assert_eq!(m.mark_price.to_string(), "43000.5");
    handle.shutdown().await;
}

#[tokio::test]
async fn market_stream_reconnects_on_its_own_before_the_maximum_age() {
    let (ws_url, mut conns) = ws_server().await;
    let mut cfg = ExchangeConfig::for_mode(Mode::Paper).with_urls("http://127.0.0.1:1", ws_url);
    fast_ws(&mut cfg);
    cfg.ws.max_connection_age_ms = 300;
    let streams = [MarketStream::BookTicker {
        symbol: "ETHUSDT".into(),
    }];
    let (mut rx, handle) = spawn_market_streams(&cfg, &streams, 16);
    let (uri1, mut ws1) = next(&mut conns).await;
    assert_eq!(uri1, "/public/stream?streams=ethusdt@bookTicker");
    assert_eq!(
        next(&mut rx).await,
        MarketEvent::Connected { path: "public" }
    );
    // the client closes the aged connection itself and opens a new one
    let closed = tokio::time::timeout(Duration::from_secs(5), ws1.next())
        .await
        .unwrap();
    assert!(
        matches!(closed, Some(Ok(Message::Close(_))) | None),
        "{closed:?}"
    );
    let (uri2, _ws2) = next(&mut conns).await;
    assert_eq!(uri2, uri1);
    assert_eq!(
        next(&mut rx).await,
        MarketEvent::Connected { path: "public" }
    );
    handle.shutdown().await;
}

const OTU: &str = r#"{"e":"ORDER_TRADE_UPDATE","E":10,"T":10,"o":{"s":"BTCUSDT","c":"qt-1","S":"BUY","o":"MARKET","f":"GTC","q":"0.01","p":"0","ap":"43000","sp":"0","x":"TRADE","X":"FILLED","i":5,"l":"0.01","z":"0.01","L":"43000","N":"USDT","n":"0.17","T":10,"t":9,"m":false,"R":false,"ps":"BOTH","cp":false,"rp":"0"}}"#;
const ALGO: &str = r#"{"e":"ALGO_UPDATE","E":11,"T":11,"o":{"caid":"qt-stop","aid":7,"at":"CONDITIONAL","o":"STOP_MARKET","s":"BTCUSDT","S":"SELL","ps":"BOTH","q":"0","X":"NEW","ai":"","tp":"41000","p":"0","cp":true,"R":false,"rm":""}}"#;

#[tokio::test]
async fn user_stream_recreates_the_listen_key_after_listen_key_expired() {
    let mock = Mock::start().await;
    {
        let mut st = mock.state.lock().unwrap();
        st.listen_keys.push_back("key-one".into());
        st.listen_keys.push_back("key-two".into());
    }
    let (ws_url, mut conns) = ws_server().await;
    let mut cfg = ExchangeConfig::for_mode(Mode::Paper)
        .with_urls(mock.url.clone(), ws_url)
        .with_credentials(API_KEY, API_SECRET);
    fast_ws(&mut cfg);
    let client = BinanceClient::new(cfg.clone(), Arc::new(SystemClock)).unwrap();
    let (mut rx, handle) = spawn_user_stream(client, &cfg, 16);

    let (uri1, mut ws1) = next(&mut conns).await;
    assert_eq!(
        uri1,
        "/private/ws?listenKey=key-one&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE"
    );
    assert_eq!(next(&mut rx).await, UserEvent::Connected);
    ws1.send(Message::Text(OTU.into())).await.unwrap();
    let UserEvent::OrderTradeUpdate(u) = next(&mut rx).await else {
        panic!("expected an order update")
    };
    assert_eq!(u.order.client_order_id, "qt-1");
    ws1.send(Message::Text(
        r#"{"e":"listenKeyExpired","E":12,"listenKey":"key-one"}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next(&mut rx).await,
        UserEvent::ListenKeyExpired { event_time: 12 }
    );

    let (uri2, mut ws2) = next(&mut conns).await;
    assert!(uri2.contains("listenKey=key-two"), "{uri2}");
    assert_eq!(next(&mut rx).await, UserEvent::Connected);
    ws2.send(Message::Text(ALGO.into())).await.unwrap();
    let UserEvent::AlgoUpdate(a) = next(&mut rx).await else {
        panic!("expected an algo update")
    };
    assert_eq!(a.order.client_algo_id, "qt-stop");
    assert_eq!(mock.requests("POST", "/fapi/v1/listenKey").len(), 2);
    handle.shutdown().await;
    assert_eq!(
        mock.requests("DELETE", "/fapi/v1/listenKey").len(),
        1,
        "closed on shutdown"
    );
}

#[tokio::test]
async fn user_stream_keeps_the_key_alive_and_recreates_it_on_minus_1125() {
    let mock = Mock::start().await;
    {
        let mut st = mock.state.lock().unwrap();
        st.listen_keys.push_back("key-a".into());
        st.listen_keys.push_back("key-b".into());
    }
    mock.script(
        "PUT /fapi/v1/listenKey",
        Scripted::error(400, -1125, "This listenKey does not exist."),
    );
    let (ws_url, mut conns) = ws_server().await;
    let mut cfg = ExchangeConfig::for_mode(Mode::Paper)
        .with_urls(mock.url.clone(), ws_url)
        .with_credentials(API_KEY, API_SECRET);
    fast_ws(&mut cfg);
    cfg.ws.listen_key_keepalive_ms = 150;
    let client = BinanceClient::new(cfg.clone(), Arc::new(SystemClock)).unwrap();
    let (mut rx, handle) = spawn_user_stream(client, &cfg, 16);
    let (uri1, _ws1) = next(&mut conns).await;
    assert!(uri1.contains("listenKey=key-a"), "{uri1}");
    assert_eq!(next(&mut rx).await, UserEvent::Connected);
    // first keepalive answers -1125: a new key and a new connection
    let (uri2, _ws2) = next(&mut conns).await;
    assert!(uri2.contains("listenKey=key-b"), "{uri2}");
    assert_eq!(next(&mut rx).await, UserEvent::Connected);
    assert!(!mock.requests("PUT", "/fapi/v1/listenKey").is_empty());
    handle.shutdown().await;
}

#[tokio::test]
async fn user_stream_reconnects_with_a_fresh_listen_key_after_a_drop() {
    let mock = Mock::start().await;
    mock.state
        .lock()
        .unwrap()
        .listen_keys
        .push_back("key-x".into());
    let (ws_url, mut conns) = ws_server().await;
    let mut cfg = ExchangeConfig::for_mode(Mode::Paper)
        .with_urls(mock.url.clone(), ws_url)
        .with_credentials(API_KEY, API_SECRET);
    fast_ws(&mut cfg);
    let client = BinanceClient::new(cfg.clone(), Arc::new(SystemClock)).unwrap();
    let (mut rx, handle) = spawn_user_stream(client, &cfg, 16);
    let (uri1, ws1) = next(&mut conns).await;
    assert!(uri1.contains("listenKey=key-x"), "{uri1}");
    assert_eq!(next(&mut rx).await, UserEvent::Connected);
    drop(ws1);
    let (_uri2, mut ws2) = next(&mut conns).await;
    assert_eq!(next(&mut rx).await, UserEvent::Connected);
    assert_eq!(mock.requests("POST", "/fapi/v1/listenKey").len(), 2);
    ws2.send(Message::Text(OTU.into())).await.unwrap();
    assert!(matches!(
        next(&mut rx).await,
        UserEvent::OrderTradeUpdate(_)
    ));
    handle.shutdown().await;
}
