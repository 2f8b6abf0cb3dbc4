//! A market stream that sends frames this client cannot decode: each is counted in
//! `qt_exchange_ws_undecodable_total{path}` and dropped, the connection stays up, and the good
//! frames around them still arrive. The server is a local tokio-tungstenite one. This file is a
//! test binary of its own because it installs the process's metrics recorder.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::SinkExt;
use qt_exchange::ws::{MarketEvent, MarketStream, decode_market_message, spawn_market_streams};
use qt_exchange::{ExchangeConfig, Mode};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const KLINE: &str = r#"{"stream":"btcusdt@kline_5m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":299999,"s":"BTCUSDT","i":"5m","o":"1","c":"2","h":"3","l":"0.5","v":"10","n":5,"x":true,"q":"20"}}}"#;
/// A kline whose close is not a number.
const BAD_KLINE: &str = r#"{"stream":"btcusdt@kline_5m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":299999,"s":"BTCUSDT","i":"5m","o":"1","c":"two","h":"3","l":"0.5","v":"10","n":5,"x":true,"q":"20"}}}"#;

async fn next(rx: &mut tokio::sync::mpsc::Receiver<MarketEvent>) -> MarketEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no event within 5 s")
        .expect("channel closed")
}

#[test]
fn replies_and_unknown_events_are_not_counted_as_undecodable() {
    assert_eq!(decode_market_message(r#"{"result":null,"id":1}"#), Ok(None));
    assert_eq!(
        decode_market_message(r#"{"e":"forceOrder","E":1,"o":{}}"#),
        Ok(None)
    );
    assert!(decode_market_message("not json").is_err());
    assert!(decode_market_message(r#"{"E":1}"#).is_err());
    let e = decode_market_message(BAD_KLINE).unwrap_err();
    assert!(e.starts_with("kline:"), "{e}");
}

#[tokio::test]
async fn undecodable_market_frames_are_counted_and_the_stream_goes_on() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        for frame in ["not json at all", BAD_KLINE, r#"{"E":5}"#, KLINE] {
            ws.send(Message::Text(frame.into())).await.unwrap();
        }
        // Keep the connection open until the client is done.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });

    let cfg = ExchangeConfig::for_mode(Mode::Paper).with_urls("http://127.0.0.1:1", url);
    let streams = [MarketStream::Kline {
        symbol: "BTCUSDT".into(),
        interval: "5m".into(),
    }];
    let (mut rx, handle) = spawn_market_streams(&cfg, &streams, 16);
    assert!(matches!(
        next(&mut rx).await,
        MarketEvent::Connected { path: "market" }
    ));
    // The three bad frames are skipped on the same connection: the next event is the kline.
    match next(&mut rx).await {
        MarketEvent::Kline(k) => assert_eq!(k.symbol, "BTCUSDT"),
        other => panic!("expected the kline, got {other:?}"),
    }
    let page = metrics.render();
    assert!(
        page.lines()
            .any(|l| l == r#"qt_exchange_ws_undecodable_total{path="market"} 3"#),
        "{page}"
    );
    handle.shutdown().await;
    server.abort();
}
