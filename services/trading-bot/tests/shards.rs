//! Symbol shards: two real `trading-bot` processes, `QT_SHARD=0/2` and `1/2`, on one Redis and
//! the real simulator serving six symbols. Every symbol's closed candles are published and
//! decided exactly once between them, each process deciding only the symbols its shard owns,
//! and each reads the facts in its own consumer group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use qt_events::Stream;
use qt_runtime::Shard;
use qt_testkit::{ChildService, free_port};

const SYMBOLS: [&str; 6] = [
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "BNBUSDT",
];

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trading-bot"))
}

async fn market_health(f: &Fixture, addr: &str) -> Option<serde_json::Value> {
    let r = f
        .http
        .get(format!("http://{addr}/health/market"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_decide_every_symbols_candles_exactly_once() {
    let f = Fixture::infra_with(&SYMBOLS, |_, _| {}).await;
    let config = f.dir.path().join("qt.toml");
    let list: Vec<String> = SYMBOLS.iter().map(|s| format!("\"{s}\"")).collect();
    std::fs::write(
        &config,
        format!("[trading_bot]\nsymbols = [{}]\n", list.join(", ")),
    )
    .unwrap();
    let redis_url = f.redis.url();
    let mut bots = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..2u32 {
        let addr = format!("127.0.0.1:{}", free_port());
        let shard = format!("{i}/2");
        let instance = format!("s{i}");
        let env = [
            ("QT_CONFIG", config.to_str().unwrap()),
            ("QT_REDIS_URL", redis_url.as_str()),
            ("QT_STREAM_PREFIX", "qt-test:"),
            ("QT_HTTP_ADDR", addr.as_str()),
            ("QT_LOG_FORMAT", "json"),
            ("QT_SHARD", shard.as_str()),
            ("QT_INSTANCE", instance.as_str()),
            ("QT_EXCHANGE_REST_URL", f.sim_base.as_str()),
            ("QT_EXCHANGE_WS_URL", f.sim_ws.as_str()),
            ("QT_API_KEY", KEY),
            ("QT_API_SECRET", SECRET),
        ];
        bots.push(ChildService::spawn(
            bin(),
            &[],
            &env,
            f.dir.path().join(format!("bot-{i}.log")),
        ));
        addrs.push(addr);
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    for (bot, addr) in bots.iter().zip(&addrs) {
        while market_health(&f, addr).await.is_none() {
            assert!(Instant::now() < deadline, "never ready: {}", bot.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let owned = |i: u32| {
        SYMBOLS
            .iter()
            .filter(|s| Shard { index: i, count: 2 }.owns(s))
            .count()
    };
    assert!(
        owned(0) > 0 && owned(1) > 0,
        "both shards own symbols: {} and {}",
        owned(0),
        owned(1)
    );

    let steps = 3usize;
    f.step(u32::try_from(steps).unwrap()).await;
    let want = SYMBOLS.len() * steps;
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.signals().await.len() < want {
        assert!(
            Instant::now() < deadline,
            "{} of {want} signals: {}\n{}",
            f.signals().await.len(),
            bots[0].output(),
            bots[1].output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates would come within the next moments.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let mut decided: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in f.signals().await {
        decided
            .entry(s.symbol)
            .or_default()
            .push(s.candle_open_time);
    }
    let mut published: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for c in f.candles().await {
        published.entry(c.symbol).or_default().push(c.open_time);
    }
    for s in SYMBOLS {
        for (what, map) in [("decided", &decided), ("published", &published)] {
            let times = map.get(s).cloned().unwrap_or_default();
            let mut distinct = times.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), steps, "{s} {what}: {times:?}");
            assert_eq!(times.len(), steps, "{s} {what} more than once: {times:?}");
        }
    }
    // Each process decided its own shard's symbols, and only those.
    for (i, addr) in addrs.iter().enumerate() {
        let h = market_health(&f, addr).await.unwrap();
        let n = owned(u32::try_from(i).unwrap());
        assert_eq!(
            h["signals"].as_u64(),
            Some((n * steps) as u64),
            "shard {i}: {h}"
        );
    }
    // The market context is shard 0's alone: the other shard neither fetches nor publishes it.
    let context = |addr: &str| {
        let req = f.http.get(format!("http://{addr}/health/context"));
        async move { req.send().await.map(|r| r.status().as_u16()).ok() }
    };
    assert_eq!(context(&addrs[0]).await, Some(200));
    assert_eq!(context(&addrs[1]).await, Some(404));
    // Each shard reads every fact, in its own group.
    let groups: Vec<String> = f
        .bus
        .stats(Stream::Control)
        .await
        .unwrap()
        .groups
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert!(
        groups.contains(&"trading-bot".to_owned())
            && groups.contains(&"trading-bot-shard1".to_owned()),
        "{groups:?}"
    );
    for mut bot in bots {
        let status = bot.terminate(15);
        assert!(status.success(), "{status:?}: {}", bot.output());
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_setting_that_cannot_work_exits_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["2/2", "one"] {
        let mut bot = ChildService::spawn(
            bin(),
            &[],
            &[("QT_SHARD", bad), ("QT_REDIS_URL", "redis://127.0.0.1:1")],
            dir.path().join("bot.log"),
        );
        let status = bot.wait_exit(10);
        assert_eq!(status.code(), Some(2), "{bad}: {}", bot.output());
        assert!(bot.output().contains("QT_SHARD"), "{}", bot.output());
    }
}
