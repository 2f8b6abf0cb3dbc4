//! The exchange API health panel, from the real source: the real `portfolio-intelligence`
//! binary syncs with the real simulator, whose weight limit is then lowered so that it answers
//! 429 (the client then holds every request until the `Retry-After`, as it should, so it sends
//! nothing that would earn a 418 ban; reading the 418 series is `exchange_api`'s unit test);
//! the service reads the `qt_exchange_*` series of every polled service's
//! `/metrics` (here its own, where its exchange client counts them) and the dashboard, in
//! headless Chromium, shows the weight used, the 429 and 418 counts and the latency the API
//! reports. Skips the browser part with a message when `chromium` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdp;
mod common;

use std::path::PathBuf;
use std::time::Duration;

use qt_events::api::{Dashboard, ExchangeApiView};
use qt_testkit::ChildService;

async fn dashboard(http: &reqwest::Client, me: &str) -> Option<Dashboard> {
    http.get(format!("{me}/api/dashboard"))
        .send()
        .await
        .ok()?
        .json::<Dashboard>()
        .await
        .ok()
}

/// The dashboard once this service's exchange figures satisfy `ok` (at most 30 s).
async fn until(
    http: &reqwest::Client,
    me: &str,
    what: &str,
    ok: impl Fn(&ExchangeApiView) -> bool,
) -> Dashboard {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(d) = dashboard(http, me).await
            && d.exchange_api
                .iter()
                .find(|a| a.service == "portfolio-intelligence")
                .is_some_and(&ok)
        {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_health_panel_shows_weight_429s_and_latency_from_the_services_metrics() {
    let f = common::fixture();
    let (_client, base, sim) = common::sim().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http_addr = format!("127.0.0.1:{port}");
    let me = format!("http://{http_addr}");
    let redis_url = f.redis.url();
    let ws = base.replace("http://", "ws://");
    let env: Vec<(&str, &str)> = vec![
        ("QT_REDIS_URL", &redis_url),
        ("QT_STREAM_PREFIX", "t:"),
        ("QT_HTTP_ADDR", &http_addr),
        ("QT_EXCHANGE_REST_URL", &base),
        ("QT_EXCHANGE_WS_URL", &ws),
        ("QT_API_KEY", common::KEY),
        ("QT_API_SECRET", common::SECRET),
        ("QT_DATABASE_URL", &f.db_url),
        ("QT_PORTFOLIO_INTELLIGENCE__SYNC_INTERVAL", "200ms"),
        ("QT_PORTFOLIO_INTELLIGENCE__SNAPSHOT_INTERVAL", "300ms"),
        // Only this service is polled: its own /metrics carries its exchange client's figures.
        (
            "QT_PORTFOLIO_INTELLIGENCE__SERVICES__PORTFOLIO_INTELLIGENCE",
            &me,
        ),
        ("QT_PORTFOLIO_INTELLIGENCE__SERVICES__TRADING_BOT", ""),
        ("QT_PORTFOLIO_INTELLIGENCE__SERVICES__EXECUTION", ""),
        ("QT_PORTFOLIO_INTELLIGENCE__SERVICES__EXIT_BRAIN", ""),
        ("QT_PORTFOLIO_INTELLIGENCE__SERVICES__CLM", ""),
        ("QT_PORTFOLIO_INTELLIGENCE__EXCHANGE_WEIGHT_LIMIT", "2400"),
        ("QT_LOG_LEVEL", "info"),
    ];
    let mut child = ChildService::spawn(
        PathBuf::from(env!("CARGO_BIN_EXE_portfolio-intelligence")),
        &[],
        &env,
        f.dir.path().join("pi.log"),
    );
    let http = reqwest::Client::new();
    let dashboard = || dashboard(&http, &me);
    // Healthy first: weight and latency, no 429.
    let d = until(&http, &me, "weight and latency reported", |a| {
        a.weight_used_1m.is_some() && a.requests > 0 && a.latency_p50_ms.is_some()
    })
    .await;
    let a = &d.exchange_api[0];
    assert_eq!((a.rate_limited_429, a.banned_418), (0, 0), "{a:?}");
    assert_eq!(a.weight_limit_1m, 2400);
    assert!(a.error.is_none());

    // The exchange's weight limit lowered below one sync's weight: the next request gets 429.
    let r = http
        .post(format!("{base}/sim/limits"))
        .json(&serde_json::json!({"weightPerMinute": 1, "ordersPer10s": 300, "ordersPerMinute": 1200, "banAfter429s": 0, "banSeconds": 120}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let d = until(&http, &me, "a 429 counted", |a| a.rate_limited_429 >= 1).await;
    let api = d
        .exchange_api
        .iter()
        .find(|a| a.service == "portfolio-intelligence")
        .unwrap()
        .clone();
    assert!(api.weight_used_1m.unwrap() > 0.0, "{api:?}");
    assert!(
        api.latency_p99_ms.unwrap() >= api.latency_p50_ms.unwrap(),
        "{api:?}"
    );

    let Some(bin) = cdp::chromium() else {
        qt_testkit::skip_unless_ci("chromium is not installed (apt-get install -y chromium)");
        child.terminate(20);
        return;
    };
    let mut b = cdp::Browser::launch(&bin, 1280, 900).await;
    b.goto(&format!("{me}/")).await;
    b.wait_for(
        "document.getElementById('conn').textContent === 'connected' && document.querySelector('#api tr[data-service=\"portfolio-intelligence\"]')",
    )
    .await;
    // The row as the page shows it, against the API read at the same moment.
    let (row, now) = loop {
        let row = b
            .eval("[...document.querySelectorAll('#api tr[data-service=\"portfolio-intelligence\"] td')].map((t) => t.innerText)")
            .await;
        let now = dashboard().await.unwrap();
        let again = b
            .eval("[...document.querySelectorAll('#api tr[data-service=\"portfolio-intelligence\"] td')].map((t) => t.innerText)")
            .await;
        if row == again {
            break (row, now);
        }
    };
    let a = now
        .exchange_api
        .iter()
        .find(|a| a.service == "portfolio-intelligence")
        .unwrap();
    let cells: Vec<String> = serde_json::from_value(row).unwrap();
    assert_eq!(cells[0], "portfolio-intelligence");
    assert!(cells[1].ends_with("/ 2400"), "{cells:?}");
    assert!(a.rate_limited_429 >= 1);
    assert_eq!(
        cells[2],
        format!("{} / {}", a.rate_limited_429, a.banned_418),
        "429s and 418s shown"
    );
    let ms = |x: Option<f64>| format!("{:.1} ms", x.unwrap());
    assert_eq!(
        cells[3],
        format!("{} / {}", ms(a.latency_p50_ms), ms(a.latency_p99_ms))
    );
    assert_eq!(cells[4], a.requests.to_string());
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-panels");
    std::fs::create_dir_all(&shot).unwrap();
    assert!(
        b.screenshot("#panel-api", &shot.join("panel-api-rate-limited.png"))
            .await
            > 2_000
    );
    let status = child.terminate(20);
    assert!(status.success(), "clean exit:\n{}", child.output());
    drop(sim);
}
