//! The hub against real HTTP (a local server speaking each provider's documented answers) and a
//! real redis-server: documented shapes read into Decimal values; 429 with Retry-After, 5xx,
//! malformed JSON and slow answers handled; N instances → one upstream request per TTL.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fake, Mode, cache};
use qt_context::sources::binance::BinanceFutures;
use qt_context::sources::coingecko::{CoinGecko, CoinGeckoConfig};
use qt_context::sources::fear_greed::FearGreed;
use qt_context::{ContextHub, HubConfig, Policy, Query, Source};
use qt_events::clock::{Clock, ManualClock, SharedClock};
use qt_events::{Decimal, Freshness};
use qt_exchange::market_data::DataPeriod;
use qt_exchange::{BinanceClient, ExchangeConfig, Mode as ExMode};
use qt_testkit::RedisServer;

const T0: i64 = 1_712_520_000_000;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn test_policy() -> Policy {
    Policy {
        ttl: Duration::from_secs(300),
        max_age: Duration::from_secs(900),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        breaker_failures: 3,
        breaker_open_for: Duration::from_secs(60),
    }
}

fn coingecko(url: &str) -> CoinGecko {
    CoinGecko::new(&CoinGeckoConfig {
        base_url: url.into(),
        api_key: None,
        coin_ids: vec!["bitcoin".into(), "ethereum".into()],
        timeout: Duration::from_secs(5),
    })
    .unwrap()
    .with_policy(test_policy())
}

fn hub(
    sources: Vec<Arc<dyn Source>>,
    redis: &RedisServer,
    prefix: &str,
    clock: &ManualClock,
    timeout: Duration,
) -> ContextHub {
    let shared: SharedClock = Arc::new(clock.clone());
    ContextHub::new(
        sources,
        cache(&redis.url(), prefix, shared.clone()),
        shared,
        HubConfig {
            request_timeout: timeout,
            ..HubConfig::default()
        },
    )
}

fn value(r: &qt_context::Reading, metric: &str, symbol: Option<&str>) -> Option<Decimal> {
    r.values
        .iter()
        .find(|v| v.metric == metric && v.symbol.as_deref() == symbol)
        .and_then(|v| v.value)
}

#[tokio::test]
async fn coingecko_and_fear_greed_documented_answers_become_decimal_values_with_their_times() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    let fg = FearGreed::new(&fake.url, Duration::from_secs(5)).unwrap();
    let h = hub(
        vec![Arc::new(coingecko(&fake.url)), Arc::new(fg)],
        &redis,
        "t1:",
        &clock,
        Duration::from_secs(5),
    );

    let g = h.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(g.freshness, Freshness::Fresh, "{g:?}");
    assert_eq!(
        value(&g, "btc_dominance_pct", None),
        Some(dec("50.4465263233584"))
    );
    assert_eq!(
        value(&g, "total_market_cap_usd", None),
        Some(dec("2721226850772.63"))
    );
    assert_eq!(g.values[0].as_of, Some(1_712_512_855_000));
    assert_eq!(g.age_ms, Some(0));

    let m = h.get("coingecko", &Query::CoinMarkets).await.unwrap();
    assert_eq!(value(&m, "price_usd", Some("BTC")), Some(dec("70187")));
    assert_eq!(
        value(&m, "market_cap_usd", Some("ETH")),
        None,
        "null market cap is missing, not zero"
    );
    assert!(
        m.values
            .iter()
            .all(|v| v.metric != "market_cap_usd" || v.symbol.as_deref() != Some("ETH"))
    );

    let t = h.get("coingecko", &Query::Trending).await.unwrap();
    assert_eq!(value(&t, "trending_rank", Some("CAH")), Some(dec("1")));
    assert_eq!(t.values[0].label.as_deref(), Some("Moon Tropica"));

    let f = h.get("fear_greed", &Query::FearGreed).await.unwrap();
    assert_eq!(f.values.len(), 1, "only the latest value");
    assert_eq!(f.values[0].value, Some(dec("40")));
    assert_eq!(f.values[0].label.as_deref(), Some("Fear"));
    assert_eq!(f.values[0].as_of, Some(1_551_157_200_000));
}

#[tokio::test]
async fn binance_positioning_comes_through_qt_exchange() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    let shared: SharedClock = Arc::new(clock.clone());
    let cfg =
        ExchangeConfig::for_mode(ExMode::Paper).with_urls(fake.url.clone(), "ws://127.0.0.1:9");
    let client = BinanceClient::new(cfg, shared).unwrap();
    let src = BinanceFutures::new(client, vec!["BTCUSDT".into()], DataPeriod::M5);
    let h = hub(
        vec![Arc::new(src)],
        &redis,
        "t2:",
        &clock,
        Duration::from_secs(5),
    );

    let events = h.poll().await;
    assert_eq!(events.len(), 6, "six requests per symbol");
    assert!(
        events.iter().all(|e| e.freshness == Freshness::Fresh),
        "{events:?}"
    );
    let all: Vec<_> = events.iter().flat_map(|e| e.values.clone()).collect();
    let get = |m: &str| all.iter().find(|v| v.metric == m).and_then(|v| v.value);
    assert_eq!(get("funding_rate"), Some(dec("-0.0375")));
    assert_eq!(get("open_interest_now"), Some(dec("10659.509")));
    assert_eq!(get("open_interest"), Some(dec("20403.637")));
    assert_eq!(get("top_long_short_position_ratio"), Some(dec("1.4342")));
    assert_eq!(get("global_long_short_account_ratio"), Some(dec("1.4342")));
    assert_eq!(get("taker_buy_sell_ratio"), Some(dec("1.5586")));
    assert_eq!(fake.hits("/futures/data/takerlongshortRatio"), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_holds_every_instance_until_it_has_passed() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    fake.set(
        "/api/v3/global",
        Mode::RateLimited {
            retry_after_s: Some(2),
        },
    );
    let a = hub(
        vec![Arc::new(coingecko(&fake.url))],
        &redis,
        "t3:",
        &clock,
        Duration::from_secs(5),
    );
    let b = hub(
        vec![Arc::new(coingecko(&fake.url))],
        &redis,
        "t3:",
        &clock,
        Duration::from_secs(5),
    );

    let r = a.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(r.freshness, Freshness::Missing);
    assert!(
        r.reason.as_deref().unwrap().contains("rate limited"),
        "{r:?}"
    );
    let held = b.health().await[0].held_for_ms.unwrap();
    assert!(
        held > 1_000 && held <= 2_000,
        "the other instance sees Retry-After: {held}"
    );

    // Neither instance asks again while held — not even for another request of the source.
    for h in [&a, &b] {
        let r = h.get("coingecko", &Query::Trending).await.unwrap();
        assert!(r.reason.as_deref().unwrap().contains("held off"), "{r:?}");
        let r = h.get("coingecko", &Query::Global).await.unwrap();
        assert!(r.reason.as_deref().unwrap().contains("held off"), "{r:?}");
    }
    assert_eq!(fake.total(), 1, "one request, then silence");

    fake.set("/api/v3/global", Mode::Ok);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let r = b.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(r.freshness, Freshness::Fresh, "{r:?}");
    assert_eq!(fake.hits("/api/v3/global"), 2);
}

#[tokio::test]
async fn a_429_without_retry_after_and_5xx_back_off_then_the_breaker_opens() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    fake.set("/api/v3/global", Mode::ServerError);
    let h = hub(
        vec![Arc::new(coingecko(&fake.url))],
        &redis,
        "t4:",
        &clock,
        Duration::from_secs(5),
    );

    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert!(r.reason.as_deref().unwrap().contains("http 503"), "{r:?}");
    let held = h.health().await[0].held_for_ms.unwrap();
    assert!(held <= 50, "first backoff is the policy's 50 ms: {held}");
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert!(r.reason.as_deref().unwrap().contains("held off"), "{r:?}");
    assert_eq!(fake.total(), 1);

    fake.set(
        "/api/v3/global",
        Mode::RateLimited {
            retry_after_s: None,
        },
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert!(
        r.reason.as_deref().unwrap().contains("rate limited"),
        "{r:?}"
    );
    let held = h.health().await[0].held_for_ms.unwrap();
    assert!(held > 50 && held <= 100, "the backoff doubled: {held}");

    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert!(r.reason.is_some());
    assert_eq!(fake.total(), 3);
    let health = h.health().await;
    assert_eq!(
        health[0].breaker, "open",
        "three failures open it: {health:?}"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert!(
        r.reason.as_deref().unwrap().contains("circuit open"),
        "{r:?}"
    );
    assert_eq!(fake.total(), 3, "an open breaker sends nothing");

    // After open_for, one trial goes; it succeeds and closes the breaker.
    fake.set("/api/v3/global", Mode::Ok);
    clock.advance(60_000);
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(r.freshness, Freshness::Fresh, "{r:?}");
    assert_eq!(h.health().await[0].breaker, "closed");
}

#[tokio::test]
async fn malformed_json_keeps_the_last_value_with_its_age_until_it_is_stale_then_missing() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    let h = hub(
        vec![Arc::new(coingecko(&fake.url))],
        &redis,
        "t5:",
        &clock,
        Duration::from_secs(5),
    );
    let first = h.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(first.fetched_at, Some(T0));

    fake.set("/api/v3/global", Mode::Malformed);
    clock.advance(301_000);
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(fake.hits("/api/v3/global"), 2);
    assert_eq!(r.freshness, Freshness::Fresh, "still within max_age: {r:?}");
    assert!(r.reason.as_deref().unwrap().contains("malformed"), "{r:?}");
    assert_eq!(r.age_ms, Some(301_000));
    assert_eq!(
        value(&r, "btc_dominance_pct", None),
        Some(dec("50.4465263233584"))
    );

    clock.advance(600_000);
    tokio::time::sleep(Duration::from_millis(120)).await; // past the backoff
    let r = h.get("coingecko", &Query::Global).await.unwrap();
    assert_eq!(r.freshness, Freshness::Stale, "{r:?}");
    assert_eq!(r.age_ms, Some(901_000));
    assert!(
        !r.values.is_empty() && r.values.iter().all(|v| v.value.is_none()),
        "stale values are missing, not fresh: {r:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_is_abandoned_at_the_timeout_and_counts_as_a_failure() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    fake.set("/fng/", Mode::Slow(Duration::from_secs(3)));
    let fg = FearGreed::new(&fake.url, Duration::from_secs(30))
        .unwrap()
        .with_policy(test_policy());
    let h = hub(
        vec![Arc::new(fg)],
        &redis,
        "t6:",
        &clock,
        Duration::from_millis(300),
    );
    let r = h.get("fear_greed", &Query::FearGreed).await.unwrap();
    assert_eq!(r.freshness, Freshness::Missing);
    assert!(
        r.reason.as_deref().unwrap().contains("no answer within"),
        "{r:?}"
    );
    assert_eq!(h.health().await[0].consecutive_failures, 1);
}

#[tokio::test]
async fn n_instances_sharing_one_redis_make_one_upstream_request_per_ttl() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    // Slow enough that every caller asks while the first request is still out.
    fake.set("/api/v3/global", Mode::Slow(Duration::from_millis(300)));
    let hubs: Vec<Arc<ContextHub>> = (0..6)
        .map(|_| {
            Arc::new(hub(
                vec![Arc::new(coingecko(&fake.url))],
                &redis,
                "t7:",
                &clock,
                Duration::from_secs(5),
            ))
        })
        .collect();

    let round = |hubs: Vec<Arc<ContextHub>>| async move {
        let mut tasks = Vec::new();
        for h in &hubs {
            for _ in 0..5 {
                let h = h.clone();
                tasks.push(tokio::spawn(async move {
                    h.get("coingecko", &Query::Global).await.unwrap()
                }));
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    };

    let readings = round(hubs.clone()).await;
    assert_eq!(readings.len(), 30);
    assert_eq!(
        fake.hits("/api/v3/global"),
        1,
        "30 callers in 6 instances, one request"
    );
    assert!(
        readings
            .iter()
            .all(|r| r.freshness == Freshness::Fresh && r.fetched_at == Some(T0)),
        "{readings:?}"
    );

    clock.advance(299_000);
    round(hubs.clone()).await;
    assert_eq!(
        fake.hits("/api/v3/global"),
        1,
        "within the TTL: served from the cache"
    );

    clock.advance(1_000);
    let readings = round(hubs.clone()).await;
    assert_eq!(
        fake.hits("/api/v3/global"),
        2,
        "one more request once the TTL passed"
    );
    assert!(
        readings.iter().all(|r| r.fetched_at == Some(T0 + 300_000)),
        "{readings:?}"
    );
}

/// Health says what a reader needs: fresh; failing (the last request failed, the value still
/// usable); stale once the value is older than `max_age`, with how long it has not been fresh;
/// breaker open with when it lets a trial through; never fetched is stale since the start.
#[tokio::test]
async fn health_tells_fresh_failing_stale_and_breaker_open_apart_with_how_long() {
    let fake = Fake::start().await;
    let redis = RedisServer::start();
    let clock = ManualClock::new(T0);
    let fg = FearGreed::new(&fake.url, Duration::from_secs(5))
        .unwrap()
        .with_policy(test_policy());
    let h = hub(
        vec![Arc::new(fg)],
        &redis,
        "t9:",
        &clock,
        Duration::from_secs(5),
    );
    let s = &h.health().await[0];
    assert_eq!(s.state, "stale", "never fetched: {s:?}");
    assert_eq!(s.unhealthy_for_ms, Some(0));
    assert_eq!(s.requests[0].freshness, "MISSING");

    h.get("fear_greed", &Query::FearGreed).await.unwrap();
    clock.advance(1_000);
    let s = &h.health().await[0];
    assert_eq!(
        (s.state.as_str(), s.unhealthy_for_ms),
        ("fresh", None),
        "{s:?}"
    );
    assert_eq!(s.oldest_value_age_ms, Some(1_000));
    assert_eq!(s.last_success_ms, Some(T0));
    assert!(s.requests[0].values.contains_key("fear_greed"), "{s:?}");

    // Past the TTL the provider answers garbage: the value is still usable, the source failing.
    fake.set("/fng/", Mode::Malformed);
    clock.advance(300_000);
    h.get("fear_greed", &Query::FearGreed).await.unwrap();
    assert_eq!(h.health().await[0].state, "held", "backing off");
    tokio::time::sleep(Duration::from_millis(250)).await; // past the backoff hold
    let s = &h.health().await[0];
    assert_eq!(s.state, "failing", "{s:?}");
    assert_eq!(s.unhealthy_for_ms, Some(0));

    // Older than max_age (900 s): stale, not fresh since the first failure 600 s ago.
    clock.advance(600_000);
    tokio::time::sleep(Duration::from_millis(250)).await; // past the backoff hold
    let s = &h.health().await[0];
    assert_eq!(s.state, "stale", "{s:?}");
    assert_eq!(s.unhealthy_for_ms, Some(600_000));
    assert_eq!(s.oldest_value_age_ms, Some(901_000));
    assert!(
        s.requests[0].values.is_empty(),
        "stale values are not shown as values"
    );

    // Two more failures open the breaker (three in a row).
    fake.set("/fng/", Mode::ServerError);
    for _ in 0..2 {
        h.get("fear_greed", &Query::FearGreed).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let s = &h.health().await[0];
    assert_eq!(s.state, "breaker_open", "{s:?}");
    assert_eq!(s.breaker_open_until_ms, Some(clock.now_ms() + 60_000));
    assert_eq!(s.consecutive_failures, 3);
    assert!(s.last_error.as_deref().unwrap().contains("503"), "{s:?}");
}
