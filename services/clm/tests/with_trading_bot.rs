//! clm's deployments and a rollback as the real `trading-bot` process sees them (real Redis,
//! the real simulator binary): the bot starts on clm's champion, and after a
//! `ModelRolledBack` to the previous version (what `qtctl models rollback` publishes) it tags
//! its signals with that version, without a restart. Skips with a message when the
//! trading-bot binary has not been built (`cargo build --workspace --bins`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, PREFIX, repo_klines, seed_days, tiny_settings};
use qt_events::{Event, ModelRolledBack, SignalGenerated, Stream};
use qt_testkit::{ChildService, SimExchange};

const KEY: &str = "bot-key";
const SECRET: &str = "bot-secret";

async fn signals(f: &Fixture) -> Vec<SignalGenerated> {
    f.entries(Stream::Signals)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::SignalGenerated(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_bot_runs_the_champion_and_switches_on_rollback_without_restart() {
    let exe = std::env::current_exe().unwrap();
    let bot_bin = exe.parent().unwrap().parent().unwrap().join("trading-bot");
    if !bot_bin.is_file() {
        println!(
            "skipped: {} not built (cargo build --workspace --bins)",
            bot_bin.display()
        );
        return;
    }
    qt_exchange::install_crypto_provider();
    let f = Fixture::new();

    // Two promoted versions: the second always beats the first here.
    let mut settings = tiny_settings(f.dir.path());
    settings.gate.min_improvement = rust_decimal::Decimal::from(-1_000_000_000);
    settings.gate.drawdown_tolerance = 1.0;
    let clm = f.clm(settings).await;
    seed_days(&clm, 7).await;
    f.clock
        .set(clm.db.last_candle_time().await.unwrap().unwrap() + 300_000);
    let v1 = clm.tick().await.unwrap().expect("first run").version;
    clm.request("again").await.unwrap();
    let v2 = clm.tick().await.unwrap().expect("second run").version;
    assert_eq!(clm.champion().await.unwrap().unwrap().version, v2);
    assert_eq!(f.deployed().await.len(), 2);

    // The simulator and the bot.
    let sim = SimExchange::builder()
        .key(KEY, SECRET)
        .data(repo_klines().join("BTCUSDT-5m.csv.gz"))
        .symbols(&["BTCUSDT"])
        .warmup_candles(300)
        .start();
    let sim_base = sim.rest_url();
    let sim_ws = sim.ws_url();
    let config = f.dir.path().join("bot.toml");
    std::fs::write(&config, "[trading_bot]\nsymbols = [\"BTCUSDT\"]\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http_addr = format!("127.0.0.1:{port}");
    let url = f.redis.url();
    let env = [
        ("QT_CONFIG", config.to_str().unwrap()),
        ("QT_REDIS_URL", url.as_str()),
        ("QT_STREAM_PREFIX", PREFIX),
        ("QT_HTTP_ADDR", http_addr.as_str()),
        ("QT_LOG_FORMAT", "json"),
        ("QT_EXCHANGE_REST_URL", sim_base.as_str()),
        ("QT_EXCHANGE_WS_URL", sim_ws.as_str()),
        ("QT_API_KEY", KEY),
        ("QT_API_SECRET", SECRET),
    ];
    let mut bot = ChildService::spawn(bot_bin, &[], &env, f.dir.path().join("bot.log"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("http://{http_addr}/health/market"))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bot never ready: {}",
            bot.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let step = || async {
        let r = http
            .post(format!("{sim_base}/sim/step?candles=1"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    };
    // Steps candles until a signal of `version` is the latest one.
    let until_version = |version: String| {
        let f = &f;
        let step = &step;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                step().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let s = signals(f).await;
                if s.last().is_some_and(|s| s.model_version == version) {
                    return s;
                }
                assert!(Instant::now() < deadline, "no signal of {version}: {s:?}");
            }
        }
    };
    let before = until_version(v2.clone()).await;
    assert!(before.iter().all(|s| s.model_version == v2), "{before:?}");

    let row = clm.db.model(&v1).await.unwrap().unwrap();
    f.bus
        .publish(&f.bus.envelope(Event::ModelRolledBack(ModelRolledBack {
            from_version: v2.clone(),
            artifact: clm::registry::artifact_ref(&row),
            reason: "test rollback".into(),
            rolled_back_at: 1,
        })))
        .await
        .unwrap();
    let after = until_version(v1.clone()).await;
    // Once switched, it stays switched; every signal carries one of the two versions.
    let first_v1 = after.iter().position(|s| s.model_version == v1).unwrap();
    assert!(
        after[first_v1..].iter().all(|s| s.model_version == v1),
        "{after:?}"
    );
    assert!(after[..first_v1].iter().all(|s| s.model_version == v2));
    assert!(bot.is_running(), "no restart: {}", bot.output());
    // Every candle of the flow was decided exactly once across the swap: one signal per
    // candle, consecutive open times, none dropped, none twice.
    let times: Vec<i64> = after.iter().map(|s| s.candle_open_time).collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 300_000),
        "{times:?}"
    );

    let status = bot.terminate(15);
    assert!(status.success(), "{status:?}: {}", bot.output());
    drop(sim);
}
