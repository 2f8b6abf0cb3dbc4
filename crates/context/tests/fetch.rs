//! History download against a local server speaking Binance's and alternative.me's documented
//! answers: files in the documented format, rows inside the window, publication times after the
//! times they describe, and the loader reading them back.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Fake;
use qt_context::ContextHistory;
use qt_context::fetch::{FetchPlan, fetch_binance, fetch_fear_greed};
use qt_context::sources::fear_greed::FearGreed;
use qt_events::clock::{ManualClock, SharedClock};
use qt_exchange::market_data::DataPeriod;
use qt_exchange::{BinanceClient, ExchangeConfig, Mode};

#[tokio::test]
async fn fetched_history_lands_in_documented_files_stamped_with_publication_times() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    // "Now" a day after the fake's statistics, so Binance's 30-day window covers them.
    let clock: SharedClock = Arc::new(ManualClock::new(1_585_700_000_000));
    let cfg = ExchangeConfig::for_mode(Mode::Paper).with_urls(fake.url.clone(), "ws://127.0.0.1:9");
    let client = BinanceClient::new(cfg, clock.clone()).unwrap();
    let plan = FetchPlan {
        from_ms: 1_570_000_000_000,
        to_ms: 1_585_699_999_999,
        symbols: vec!["BTCUSDT".into()],
        period: DataPeriod::D1,
        out: dir.path().to_path_buf(),
    };
    let written = fetch_binance(&client, &plan, &clock).await.unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for f in [
        "funding_rate-BTCUSDT.csv",
        "open_interest-BTCUSDT.csv",
        "top_long_short_position_ratio-BTCUSDT.csv",
        "global_long_short_account_ratio-BTCUSDT.csv",
        "taker_buy_sell_ratio-BTCUSDT.csv",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} in {names:?}");
    }
    assert_eq!(
        fake.hits("/fapi/v1/fundingRate"),
        1,
        "two rows < a page: one request"
    );

    let fg = FearGreed::new(&fake.url, Duration::from_secs(5)).unwrap();
    let w = fetch_fear_greed(&fg, 1_550_000_000_000, 1_551_100_000_000, dir.path())
        .await
        .unwrap();
    assert_eq!(w[0].1, 2, "the row after the window is left out");

    let text = std::fs::read_to_string(dir.path().join("fear_greed.csv")).unwrap();
    assert_eq!(
        text,
        "published_at,as_of,value,label\n1551070800000,1550984400000,41,Fear\n1551157200000,1551070800000,47,Neutral\n"
    );
    let h = ContextHistory::load(dir.path()).unwrap();
    let f = h.rows("funding_rate", Some("BTCUSDT"));
    assert_eq!(f.len(), 2);
    assert!(f.iter().all(|r| r.published_at > r.as_of));
    let t = h.rows("taker_buy_sell_ratio", Some("BTCUSDT"));
    assert_eq!(t[0].as_of, 1_585_614_900_000);
    assert_eq!(t[0].published_at, 1_585_614_900_000 + 86_400_000 + 60_000);
}
