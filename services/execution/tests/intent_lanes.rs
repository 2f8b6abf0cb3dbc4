//! Intents of different symbols do not wait for each other's round trips: an entry whose
//! set-leverage request is held by the simulator does not hold up another symbol's entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{KEY, SECRET, dec, fixture, open_intent, settings};
use qt_events::{Envelope, Event, OpenPosition};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig};
use serde_json::{Value, json};
use sim_exchange::{ApiKey, MarketSource, SimConfig};
use tokio_util::sync::CancellationToken;

const OTHER: &str = "ETHUSDT";

/// A simulator that lists `BTCUSDT` and `ETHUSDT`; its base URL.
async fn two_symbol_sim(stop: CancellationToken) -> String {
    let cfg = SimConfig {
        keys: vec![ApiKey {
            key: KEY.into(),
            secret: SECRET.into(),
        }],
        source: MarketSource::Files(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m"),
        ),
        symbols: vec![common::SYMBOL.into(), OTHER.into()],
        speed: 0.0,
        warmup_candles: 300,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        sim_exchange::serve(cfg, listener, stop).await.unwrap();
    });
    format!("http://{addr}")
}

/// The leverage the simulator has set for `symbol` (`GET /fapi/v2/positionRisk`).
async fn leverage_on_sim(base: &str, server_now: i64, symbol: &str) -> String {
    let q = format!("symbol={symbol}&timestamp={server_now}");
    let sig = sim_exchange::sign::sign(SECRET, &q);
    let rows: Value = reqwest::Client::new()
        .get(format!("{base}/fapi/v2/positionRisk?{q}&signature={sig}"))
        .header("X-MBX-APIKEY", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rows[0]["leverage"].as_str().unwrap_or_default().to_owned()
}

fn entry_of(env: Envelope, symbol: &str, leverage: u32) -> Envelope {
    let Event::OpenPosition(o) = env.event.clone() else {
        unreachable!("open_intent builds an OpenPosition")
    };
    Envelope {
        event: Event::OpenPosition(OpenPosition {
            symbol: symbol.into(),
            leverage,
            ..o
        }),
        sym: Some(symbol.into()),
        ..env
    }
}

fn accepted(out: &[Envelope]) -> bool {
    out.iter()
        .any(|e| matches!(e.event, Event::OrderAccepted(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_goes_out_while_another_symbols_entry_waits_for_its_leverage() {
    let fx = fixture().await;
    let stop = CancellationToken::new();
    let base = two_symbol_sim(stop.clone()).await;
    let mut xcfg = ExchangeConfig::default()
        .with_urls(base.clone(), base.replace("http://", "ws://"))
        .with_credentials(KEY, SECRET);
    // The held request must neither time out on the client's side nor outlive its
    // recvWindow on the exchange's.
    xcfg.request_timeout_ms = 30_000;
    xcfg.recv_window_ms = 10_000;
    let client = BinanceClient::new(xcfg, qt_events::clock::system()).unwrap();
    client.sync_time().await.unwrap();
    let ex = fx.execution_with(client.clone(), settings()).await;
    let btc_mark = client.mark_price(common::SYMBOL).await.unwrap().mark_price;
    let eth_mark = client.mark_price(OTHER).await.unwrap().mark_price;

    // ETHUSDT's leverage is set by its first entry; its next entry needs no request for it.
    let first = entry_of(open_intent(&fx.bus, "eth-1", "0.05", eth_mark), OTHER, 5);
    assert!(accepted(&ex.handle_intent(&first).await.unwrap()));

    // From now on every set-leverage request is held by the simulator before it is applied.
    let faults: Value = reqwest::Client::new()
        .post(format!("{base}/sim/faults"))
        .json(&json!({"pathLatencyMs": {"/fapi/v1/leverage": 3_000}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    assert!(!faults.is_null(), "the simulator takes the fault settings");
    let before = leverage_on_sim(&base, client.server_now_ms(), common::SYMBOL).await;
    assert_ne!(before, "7", "the symbol starts at another leverage");

    let btc_entry = entry_of(
        open_intent(&fx.bus, "btc-1", "0.005", btc_mark),
        common::SYMBOL,
        7,
    );
    let btc = tokio::spawn({
        let ex = ex.clone();
        async move { ex.handle_intent(&btc_entry).await }
    });
    // Let the BTCUSDT entry reach its set-leverage request (sequencing, not a measurement).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let second = entry_of(open_intent(&fx.bus, "eth-2", "0.05", eth_mark), OTHER, 5);
    assert!(accepted(&ex.handle_intent(&second).await.unwrap()));
    // The ETHUSDT entry went out while the BTCUSDT one was still waiting for its leverage:
    // the simulator has not applied it yet (it would have, had the entry waited for it).
    assert_eq!(
        leverage_on_sim(&base, client.server_now_ms(), common::SYMBOL).await,
        before,
        "the other symbol's entry waited for the set-leverage request"
    );
    assert!(!btc.is_finished());

    // And the held entry goes out once its leverage is set.
    let out = btc.await.unwrap().unwrap();
    assert!(accepted(&out), "{out:?}");
    assert_eq!(
        leverage_on_sim(&base, client.server_now_ms(), common::SYMBOL).await,
        "7"
    );
    assert_eq!(
        client.positions(Some(OTHER)).await.unwrap()[0].position_amt,
        dec("0.10")
    );
    stop.cancel();
    fx.stop().await;
}
