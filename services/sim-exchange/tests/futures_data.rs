//! Positioning endpoints against the real simulator, read by our Binance client: open interest,
//! top-trader position and all-account long/short ratios and taker buy/sell volume come from
//! the simulator's own accounts (one long 0.03, one short 0.01) in Binance's documented shapes; a
//! ratio with an empty side has no row; a bad period is Binance's -1120.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_exchange::market_data::{DataPeriod, HistoryRange};
use qt_exchange::{BinanceClient, ExchangeConfig};
use reqwest::Method;
use sim_exchange::{ApiKey, SimConfig};

const SHORT_KEY: &str = "short-key";
const SHORT_SECRET: &str = "short-secret";

async fn market(sim: &Sim, key: &str, secret: &str, side: &str, qty: &str) {
    let r = sim
        .signed_as(
            key,
            secret,
            Method::POST,
            "/fapi/v1/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", side),
                ("type", "MARKET"),
                ("quantity", qty),
            ],
            now_ms(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn positioning_comes_from_the_simulators_accounts_in_binances_shapes() {
    let mut cfg = replay_config();
    cfg.keys.push(ApiKey {
        key: SHORT_KEY.into(),
        secret: SHORT_SECRET.into(),
    });
    let sim = start(SimConfig { ..cfg }).await;
    let client = BinanceClient::new(
        ExchangeConfig::default().with_urls(sim.base.clone(), sim.ws_base.clone()),
        qt_events::clock::system(),
    )
    .unwrap();
    let latest = HistoryRange {
        limit: Some(1),
        ..HistoryRange::default()
    };

    // Nobody holds anything: no open interest, no ratio rows.
    assert!(
        client
            .open_interest("BTCUSDT")
            .await
            .unwrap()
            .open_interest
            .is_zero()
    );
    assert!(
        client
            .top_long_short_position_ratio("BTCUSDT", DataPeriod::M5, latest)
            .await
            .unwrap()
            .is_empty()
    );

    market(&sim, KEY, SECRET, "BUY", "0.03").await;
    market(&sim, SHORT_KEY, SHORT_SECRET, "SELL", "0.01").await;

    let oi = client.open_interest("BTCUSDT").await.unwrap();
    assert_eq!(oi.open_interest, dec("0.03"));
    let hist = client
        .open_interest_history("BTCUSDT", DataPeriod::M5, latest)
        .await
        .unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].sum_open_interest, dec("0.03"));
    assert!(hist[0].sum_open_interest_value > dec("0"));
    assert_eq!(
        hist[0].timestamp % 300_000,
        0,
        "stamped with its period's start"
    );

    let top = client
        .top_long_short_position_ratio("BTCUSDT", DataPeriod::M5, latest)
        .await
        .unwrap();
    assert_eq!(top[0].long_short_ratio, dec("3"));
    assert_eq!(top[0].long_account, dec("0.75"));
    let global = client
        .global_long_short_account_ratio("BTCUSDT", DataPeriod::H1, latest)
        .await
        .unwrap();
    assert_eq!(
        global[0].long_short_ratio,
        dec("1"),
        "one account long, one short"
    );

    let taker = client
        .taker_long_short_ratio("BTCUSDT", DataPeriod::D1, latest)
        .await
        .unwrap();
    assert_eq!(taker.len(), 1, "{taker:?}");
    assert_eq!(
        (taker[0].buy_vol, taker[0].sell_vol),
        (dec("0.03"), dec("0.01"))
    );
    assert_eq!(taker[0].buy_sell_ratio, dec("3"));

    // A window before the current period has no row (the simulator keeps no history).
    let before = client
        .open_interest_history(
            "BTCUSDT",
            DataPeriod::M5,
            HistoryRange {
                start_time: Some(0),
                end_time: Some(1),
                limit: None,
            },
        )
        .await
        .unwrap();
    assert!(before.is_empty());

    let r = sim
        .get("/futures/data/takerlongshortRatio?symbol=BTCUSDT&period=7m")
        .await;
    assert_eq!((r.status, r.code()), (400, -1120), "{}", r.body);
    let r = sim.get("/fapi/v1/openInterest?symbol=NOPEUSDT").await;
    assert_eq!(r.status, 400, "{}", r.body);
}
