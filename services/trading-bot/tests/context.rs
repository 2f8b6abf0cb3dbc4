//! The context task trading-bot hosts, in paper mode against the real simulator and a real
//! redis-server: with the default settings (Binance on, CoinGecko and Fear & Greed off) it
//! publishes one `ContextObserved` per Binance request on `context`, fresh, with the
//! simulator's funding rate; with no source configured it does not start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use qt_bus::{Bus, BusConfig};
use qt_events::{Envelope, Event, Freshness, Stream, StreamNames};
use qt_exchange::ExchangeConfig;
use qt_testkit::{RedisServer, SimExchange};
use tokio_util::sync::CancellationToken;
use trading_bot::context::{ContextSettings, context_task};

#[tokio::test]
async fn paper_context_task_publishes_binance_positioning_from_the_simulator() {
    qt_exchange::install_crypto_provider();
    let redis = RedisServer::start();
    let sim = SimExchange::builder()
        .repo_data(&["BTCUSDT"])
        .warmup_candles(300)
        .start();
    let bus = Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new("ctx:"), "trading-bot"),
        qt_events::clock::system(),
    )
    .unwrap();
    let ex = ExchangeConfig::default().with_urls(sim.rest_url(), sim.ws_url());
    let settings = ContextSettings {
        poll_seconds: 1,
        ..ContextSettings::default()
    };
    let symbols = vec!["BTCUSDT".to_string()];
    let stop = CancellationToken::new();

    let off = ContextSettings {
        binance: false,
        ..settings.clone()
    };
    assert!(
        context_task(&off, &symbols, &ex, &bus, bus.clock().clone(), stop.clone())
            .unwrap()
            .is_none(),
        "no source configured: no task"
    );

    let task = context_task(
        &settings,
        &symbols,
        &ex,
        &bus,
        bus.clock().clone(),
        stop.clone(),
    )
    .unwrap()
    .expect("binance is on by default");
    let handle = tokio::spawn(task);
    let key = bus.key(Stream::Context);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let events = loop {
        let raw = bus.range(&key, "-", "+", 100).await.unwrap();
        if raw.len() >= 6 {
            break raw
                .iter()
                .map(|e| Envelope::from_fields(e.field_pairs()).unwrap())
                .collect::<Vec<_>>();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no context events: {}",
            raw.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    handle.await.unwrap();

    let obs: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ContextObserved(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(obs.len(), events.len(), "only ContextObserved on context");
    assert!(obs.iter().all(|o| o.source == "binance_futures"), "{obs:?}");
    let funding = obs
        .iter()
        .find(|o| o.request == "funding_rate:BTCUSDT")
        .expect("funding request");
    assert_eq!(funding.freshness, Freshness::Fresh, "{funding:?}");
    let rate = funding.values.iter().find(|v| v.metric == "funding_rate");
    assert!(
        rate.and_then(|v| v.value).is_some(),
        "the simulator's funding rate: {funding:?}"
    );
    let oi = obs
        .iter()
        .find(|o| o.request == "open_interest:BTCUSDT")
        .expect("open interest request");
    assert_eq!(oi.freshness, Freshness::Fresh, "{oi:?}");
}
