//! The dashboard's charts and context health in headless Chromium, checked against
//! `/api/dashboard`: per symbol, candles with the entries, exits, stops and targets drawn on a
//! real time axis; buy-and-hold of the symbols traded beside the equity; the long/short
//! balance; each market-context source's state from trading-bot's real `/health/context`
//! (a local Fear & Greed server answering 429 with `Retry-After`, Binance's data from the real
//! simulator) and the alert once a source has not been fresh for longer than the setting; the
//! link to clm's latest walk-forward report. A screenshot per new panel. Skips with a message
//! when `chromium` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdp;
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portfolio_intelligence::{Settings, Shared, api};
use qt_events::api::Dashboard;
use qt_events::clock::{Clock, SharedClock};
use qt_events::{
    CandleClosed, Event, MarkPriceUpdated, PositionClosed, PositionOpened, PositionSide,
    ProtectPosition, StopLeg, Stream, TakeProfitLeg,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const FIVE_MIN: i64 = 300_000;

fn btc(i: i64) -> Decimal {
    Decimal::from(40_000 + 50 * i)
}

fn eth(i: i64) -> Decimal {
    Decimal::from(2_000 - 5 * i)
}

async fn apply(f: &common::Fixture, sh: &Arc<Shared>, e: Event) {
    sh.apply(&f.envelope(e)).await.unwrap();
}

fn protect(sym: &str, side: PositionSide, stop: Decimal, tps: &[(&str, Decimal)]) -> Event {
    Event::ProtectPosition(ProtectPosition {
        intent_id: format!("eb-{sym}-{stop}"),
        symbol: sym.into(),
        position_side: side,
        stop: Some(StopLeg {
            trigger_price: stop,
            working_type: Default::default(),
        }),
        take_profits: tps
            .iter()
            .map(|(leg, p)| TakeProfitLeg {
                leg: (*leg).into(),
                trigger_price: *p,
                quantity: dec!(0.05),
            })
            .collect(),
        trailing: None,
    })
}

fn opened(sym: &str, side: PositionSide, qty: Decimal, entry: Decimal, at: i64) -> Event {
    Event::PositionOpened(PositionOpened {
        position_id: format!("{sym}-1"),
        symbol: sym.into(),
        side,
        quantity: qty,
        entry_price: entry,
        leverage: 5,
        intent_id: format!("tb-open-{sym}"),
        opened_at: at,
        signal: None,
    })
}

fn mark(sym: &str, price: Decimal, at: i64) -> Event {
    Event::MarkPriceUpdated(MarkPriceUpdated {
        symbol: sym.into(),
        mark_price: price,
        index_price: None,
        funding_rate: None,
        event_time: at,
    })
}

/// 40 five-minute candles of BTCUSDT (rising) and ETHUSDT (falling), a snapshot after each;
/// ETHUSDT long from candle 5 to its stop at candle 15; BTCUSDT short from candle 20 with a
/// stop and two targets, its stop moved at candle 30; SOLUSDT long (no candles).
async fn trade_history(f: &common::Fixture, sh: &Arc<Shared>, t0: i64) {
    f.clock.set(t0);
    for i in 0..40 {
        f.clock.advance(FIVE_MIN);
        let now = f.clock.now_ms();
        for (sym, close) in [("BTCUSDT", btc(i)), ("ETHUSDT", eth(i))] {
            apply(
                f,
                sh,
                Event::CandleClosed(CandleClosed {
                    symbol: sym.into(),
                    interval: "5m".into(),
                    open_time: t0 + i * FIVE_MIN,
                    close_time: t0 + (i + 1) * FIVE_MIN - 1,
                    open: close - dec!(3),
                    high: close + dec!(10),
                    low: close - dec!(10),
                    close,
                    volume: dec!(1),
                    quote_volume: dec!(1),
                    trades: 1,
                }),
            )
            .await;
        }
        match i {
            5 => {
                apply(
                    f,
                    sh,
                    opened("ETHUSDT", PositionSide::Long, dec!(1), eth(5), now),
                )
                .await;
                apply(
                    f,
                    sh,
                    protect(
                        "ETHUSDT",
                        PositionSide::Long,
                        dec!(1950),
                        &[("tp1", dec!(2050))],
                    ),
                )
                .await;
            }
            15 => {
                apply(
                    f,
                    sh,
                    Event::PositionClosed(PositionClosed {
                        position_id: "ETHUSDT-1".into(),
                        symbol: "ETHUSDT".into(),
                        side: PositionSide::Long,
                        max_quantity: dec!(1),
                        entry_price: eth(5),
                        exit_price: dec!(1950),
                        realized_pnl: dec!(-25),
                        fees: dec!(1),
                        net_pnl: dec!(-26),
                        opened_at: t0 + 6 * FIVE_MIN,
                        closed_at: now,
                        reason: "stop".into(),
                        signal: None,
                    }),
                )
                .await;
            }
            20 => {
                apply(
                    f,
                    sh,
                    opened("BTCUSDT", PositionSide::Short, dec!(0.1), btc(20), now),
                )
                .await;
                apply(
                    f,
                    sh,
                    protect(
                        "BTCUSDT",
                        PositionSide::Short,
                        dec!(41500),
                        &[("tp1", dec!(40500)), ("tp2", dec!(40000))],
                    ),
                )
                .await;
                apply(
                    f,
                    sh,
                    opened("SOLUSDT", PositionSide::Long, dec!(10), dec!(100), now),
                )
                .await;
                apply(f, sh, mark("SOLUSDT", dec!(101), now)).await;
            }
            30 => {
                apply(
                    f,
                    sh,
                    protect("BTCUSDT", PositionSide::Short, dec!(41700), &[]),
                )
                .await
            }
            _ => {}
        }
        apply(f, sh, mark("BTCUSDT", btc(i), now)).await;
        sh.snapshot().await.unwrap();
    }
}

/// A stand-in for alternative.me that answers every request with 429 and `Retry-After`.
async fn fear_greed_limited() -> String {
    let app = axum::Router::new().route(
        "/fng/",
        axum::routing::get(|| async {
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, "600")],
                "rate limited",
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// The label the page writes under a tick: the time of day (UTC) on spans under two days.
fn tick_label(t: i64) -> String {
    portfolio_intelligence::decisions::iso(t)[11..16].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_buy_and_hold_balance_context_health_and_the_report_link_match_the_api() {
    let Some(bin) = cdp::chromium() else {
        qt_testkit::skip_unless_ci("chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let f = common::fixture();
    let t0 = common::DAY;
    let clock: SharedClock = f.clock.clone();

    // trading-bot's context task over the real simulator's Binance data and a rate-limited
    // Fear & Greed, and its /health/context route.
    let (_client, sim_url, _sim) = common::sim().await;
    let ctx_settings = trading_bot::context::ContextSettings {
        fear_greed_url: Some(fear_greed_limited().await),
        ..Default::default()
    };
    let exchange = qt_exchange::ExchangeConfig::default()
        .with_urls(sim_url.clone(), sim_url.replace("http://", "ws://"));
    let tl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tb_addr = tl.local_addr().unwrap();
    // clm's latest walk-forward report where clm writes it.
    let models_dir = tempfile::tempdir().unwrap();
    let report_dir = models_dir.path().join("reports").join("gbdt-9");
    std::fs::create_dir_all(&report_dir).unwrap();
    std::fs::write(
        report_dir.join("report.html"),
        "<!doctype html><html><body><h1>Walk-forward report of gbdt-9</h1></body></html>",
    )
    .unwrap();

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let mut settings = Settings {
        services: BTreeMap::from([
            (
                "portfolio_intelligence".to_owned(),
                format!("http://{addr}"),
            ),
            ("trading_bot".to_owned(), format!("http://{tb_addr}")),
        ]),
        models_dir: models_dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.alerts.context_down_after = Duration::from_secs(15 * 60);
    let sh = f.shared(settings).await;
    let app = api::router(sh.clone()).route(
        "/health/ready",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"ready": true})) }),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    trade_history(&f, &sh, t0).await;
    let hub = trading_bot::context::context_hub(
        &ctx_settings,
        &["BTCUSDT".to_string()],
        &exchange,
        &f.bus,
        clock.clone(),
    )
    .unwrap()
    .expect("two sources");
    let tb = trading_bot::context::context_routes(Some(hub.clone()), clock.clone());
    tokio::spawn(async move { axum::serve(tl, tb).await.unwrap() });

    // The context task's first poll: Binance fresh, Fear & Greed held by its 429.
    hub.poll().await;
    sh.observe().await;
    let fresh_ctx: Dashboard = reqwest::get(format!("http://{addr}/api/dashboard"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = |d: &Dashboard, src: &str| {
        d.context
            .sources
            .iter()
            .find(|s| s.source == src)
            .unwrap_or_else(|| panic!("{src} in {:?}", d.context))
            .clone()
    };
    assert_eq!(state(&fresh_ctx, "binance_futures").state, "fresh");
    let fg = state(&fresh_ctx, "fear_greed");
    assert_eq!(fg.state, "held", "{fg:?}");
    assert!(
        fg.held_until_ms.unwrap() > f.clock.now_ms() + 500_000,
        "{fg:?}"
    );
    assert!(
        fg.last_error.as_deref().unwrap().contains("429")
            || fg.last_error.as_deref().unwrap().contains("rate"),
        "{fg:?}"
    );
    assert_eq!(fg.unhealthy_for_ms, Some(0));
    sh.evaluate_alerts().await.unwrap();
    assert!(
        !f.events(Stream::Alerts)
            .await
            .iter()
            .any(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "context_source_down")),
        "not yet: held for less than the setting"
    );

    // 16 minutes later (Redis still holds Fear & Greed off): the alert fires for it alone.
    f.clock.advance(16 * 60_000);
    hub.poll().await;
    sh.observe().await;
    sh.evaluate_alerts().await.unwrap();
    let raised: Vec<_> = f
        .events(Stream::Alerts)
        .await
        .into_iter()
        .filter(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "context_source_down"))
        .collect();
    let [alert] = raised.as_slice() else {
        panic!("one context alert: {raised:?}")
    };
    let Event::AlertRaised(a) = &alert.event else {
        unreachable!()
    };
    assert_eq!(a.key, "fear_greed");
    assert!(
        a.message.contains("not fresh for 16 min") && a.message.contains("held off"),
        "{}",
        a.message
    );
    sh.apply(alert).await.unwrap();

    let state_now: Dashboard = reqwest::get(format!("http://{addr}/api/dashboard"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut b = cdp::Browser::launch(&bin, 1280, 900).await;
    b.goto(&format!("http://{addr}/")).await;
    b.wait_for("document.getElementById('conn').textContent === 'connected' && document.querySelectorAll('#candles g.candle').length > 0 && document.querySelector('#context tr[data-source]')").await;
    let text = |sel: &str| {
        format!(
            "document.querySelector({}).innerText",
            serde_json::json!(sel)
        )
    };

    // Candles, entries, exits, stops and targets of each symbol, as the API has them.
    assert_eq!(
        state_now
            .charts
            .iter()
            .map(|c| c.symbol.as_str())
            .collect::<Vec<_>>(),
        ["BTCUSDT", "ETHUSDT"]
    );
    for c in &state_now.charts {
        b.eval(&format!(
            "document.querySelector('[data-chart=\"{}\"]').click()",
            c.symbol
        ))
        .await;
        let drawn = b
            .eval("(() => ({candles: document.querySelectorAll('#candles g.candle').length, entries: [...document.querySelectorAll('#candles [data-mark=entry]')].map((m) => m.dataset.price), exits: [...document.querySelectorAll('#candles [data-mark=exit]')].map((m) => m.dataset.price), levels: [...document.querySelectorAll('#candles [data-level]')].map((l) => l.dataset.level + ' ' + l.dataset.price), ticks: [...document.querySelectorAll('#candles [data-tick]')].map((t) => [Number(t.dataset.tick), t.textContent])}))()")
            .await;
        assert_eq!(c.candles.len(), 40, "{}", c.symbol);
        assert_eq!(drawn["candles"], 40, "{}: {drawn}", c.symbol);
        let prices = |kind: &str| -> Vec<String> {
            c.marks
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| m.price.to_string())
                .collect()
        };
        assert_eq!(
            drawn["entries"],
            serde_json::json!(prices("entry")),
            "{}",
            c.symbol
        );
        assert_eq!(
            drawn["exits"],
            serde_json::json!(prices("exit")),
            "{}",
            c.symbol
        );
        let levels: Vec<String> = c
            .levels
            .iter()
            .map(|l| format!("{} {}", l.leg, l.price))
            .collect();
        assert_eq!(drawn["levels"], serde_json::json!(levels), "{}", c.symbol);
        let ticks = drawn["ticks"].as_array().unwrap();
        assert!(ticks.len() >= 3, "{drawn}");
        let (x0, x1) = (c.candles[0].t, c.candles[39].t + FIVE_MIN);
        for t in ticks {
            let at = t[0].as_i64().unwrap();
            assert!((x0..=x1).contains(&at), "tick {at} within the candles");
            assert_eq!(t[1], serde_json::json!(tick_label(at)), "a UTC time label");
        }
    }
    let btc_chart = &state_now.charts[0];
    assert_eq!(
        btc_chart
            .levels
            .iter()
            .map(|l| (l.leg.as_str(), l.price, l.to.is_none()))
            .collect::<Vec<_>>(),
        [
            ("stop", dec!(41500), false),
            ("tp1", dec!(40500), true),
            ("tp2", dec!(40000), true),
            ("stop", dec!(41700), true)
        ],
        "the moved stop replaced the first one"
    );
    let eth_chart = &state_now.charts[1];
    assert_eq!(
        eth_chart
            .marks
            .iter()
            .map(|m| (m.kind.as_str(), m.price))
            .collect::<Vec<_>>(),
        [("entry", eth(5)), ("exit", dec!(1950))]
    );
    assert!(
        eth_chart
            .levels
            .iter()
            .all(|l| l.to == Some(t0 + 16 * FIVE_MIN)),
        "closed with the position"
    );

    // Buy-and-hold beside the equity: BTCUSDT and ETHUSDT (SOLUSDT has no candle), equal
    // weight from the first snapshot (candle 0 closed) at that snapshot's equity.
    assert_eq!(state_now.buy_and_hold_symbols, ["BTCUSDT", "ETHUSDT"]);
    let (first_t, first_e) = state_now.equity_curve[0];
    assert_eq!(state_now.buy_and_hold[0], (first_t, first_e));
    let want = (first_e * (btc(39) / btc(0) + eth(39) / eth(0)) / dec!(2)).round_dp(2);
    assert_eq!(state_now.buy_and_hold.last().unwrap().1, want);
    assert_eq!(state_now.buy_and_hold.len(), state_now.equity_curve.len());
    assert!(b.eval("!!document.getElementById('bh-path')").await == serde_json::json!(true));
    let legend = b.eval(&text("#bh-legend")).await;
    let money = |d: Decimal| {
        let s = format!("{:.2}", d.round_dp(2));
        let (int, frac) = s.split_once('.').unwrap();
        let (neg, int) = int.strip_prefix('-').map_or(("", int), |i| ("-", i));
        let mut out = String::new();
        for (k, ch) in int.chars().enumerate() {
            if k > 0 && (int.len() - k) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{neg}{out}.{frac}")
    };
    assert!(
        legend.as_str().unwrap().contains("BTCUSDT, ETHUSDT")
            && legend.as_str().unwrap().contains(&money(want)),
        "{legend} shows {}",
        money(want)
    );
    let ticks = b
        .eval("[...document.querySelectorAll('#curve-ticks [data-tick]')].map((t) => [Number(t.dataset.tick), t.textContent])")
        .await;
    assert!(ticks.as_array().unwrap().len() >= 3, "{ticks}");
    for t in ticks.as_array().unwrap() {
        assert_eq!(t[1], serde_json::json!(tick_label(t[0].as_i64().unwrap())));
    }

    // The long/short balance.
    let ls = &state_now.long_short;
    assert_eq!((ls.long_positions, ls.short_positions), (1, 1));
    assert_eq!(ls.long_notional, dec!(1010));
    assert_eq!(ls.short_notional, dec!(0.1) * btc(39));
    let bal = b.eval(&text("[data-balance]")).await;
    let bal = bal.as_str().unwrap();
    assert!(
        bal.contains(&format!("long {} (1)", money(ls.long_notional)))
            && bal.contains(&format!("short {} (1)", money(ls.short_notional)))
            && bal.contains(&format!("net {}", money(ls.net_notional))),
        "{bal}"
    );

    // Context sources: each row's state as the API says; Fear & Greed held with its end.
    for s in &state_now.context.sources {
        let row = b
            .eval(&format!(
                "(() => {{ const r = document.querySelector('#context tr[data-source=\"{}\"]'); return [r.dataset.state, r.innerText]; }})()",
                s.source
            ))
            .await;
        assert_eq!(row[0], serde_json::json!(s.state), "{}", s.source);
        assert!(row[1].as_str().unwrap().contains(&s.state), "{row}");
        if let Some(until) = s.held_until_ms {
            // Both read the health the last poll stored: the same end.
            let note = b
                .eval(&text(&format!("[data-note=\"{}\"]", s.source)))
                .await;
            let shown = note.as_str().unwrap();
            assert!(shown.contains("not fresh for 16 min"), "{shown}");
            let end = format!(
                "held until {}",
                portfolio_intelligence::decisions::iso(until)
            );
            assert!(shown.contains(&end), "{shown} shows {end}");
        }
    }
    assert_eq!(state(&state_now, "fear_greed").state, "held");
    assert_eq!(state(&state_now, "binance_futures").state, "fresh");
    let funding = state(&state_now, "binance_futures")
        .requests
        .iter()
        .find_map(|r| {
            r.values
                .iter()
                .find(|(k, _)| k.as_str() == "funding_rate:BTCUSDT")
                .map(|(_, v)| v.clone())
        })
        .expect("the simulator's funding rate of BTCUSDT");
    let values = b.eval(&text("#context-values")).await;
    assert!(
        values
            .as_str()
            .unwrap()
            .contains(&format!("funding_rate:BTCUSDT {funding}")),
        "{values}"
    );
    let alerts = b.eval(&text("#alerts")).await;
    assert!(
        alerts
            .as_str()
            .unwrap()
            .contains("context_source_down (fear_greed)"),
        "{alerts}"
    );

    // The latest clm report, linked and served as written.
    assert_eq!(state_now.latest_report.as_deref(), Some("gbdt-9"));
    let link = b
        .eval("(() => { const a = document.getElementById('report'); return [a.getAttribute('href'), a.innerText]; })()")
        .await;
    assert_eq!(link[0], "/reports/latest");
    assert!(link[1].as_str().unwrap().contains("gbdt-9"), "{link}");
    let served = b
        .eval("fetch('/reports/latest').then((r) => r.text())")
        .await;
    assert!(
        served
            .as_str()
            .unwrap()
            .contains("Walk-forward report of gbdt-9"),
        "{served}"
    );

    // A screenshot of each new panel; then a phone: nothing wider than the screen.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-panels");
    std::fs::create_dir_all(&shots).unwrap();
    for id in [
        "panel-chart",
        "panel-curve",
        "panel-balance",
        "panel-api",
        "panel-context",
    ] {
        let n = b
            .screenshot(&format!("#{id}"), &shots.join(format!("{id}.png")))
            .await;
        assert!(n > 2_000, "{id}: a real picture ({n} bytes)");
    }
    b.viewport(390, 844, true).await;
    b.goto(&format!("http://{addr}/")).await;
    b.wait_for("document.getElementById('conn').textContent === 'connected' && document.querySelectorAll('#candles g.candle').length > 0").await;
    let wide = b
        .eval("[...document.querySelectorAll('main > section')].filter((s) => s.scrollWidth > s.clientWidth).map((s) => s.id + ' ' + s.scrollWidth + '>' + s.clientWidth)")
        .await;
    assert_eq!(wide, serde_json::json!([]));
    assert!(
        b.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            .await
            == serde_json::json!(true)
    );
    assert!(
        b.screenshot("#panel-chart", &shots.join("panel-chart-phone.png"))
            .await
            > 2_000
    );
}

/// At start the charts hold only the candles of the market stream's tail (among the marks);
/// each is filled from the real simulator's klines up to `chart_candles`, in order, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_are_filled_from_the_exchange_klines_at_start() {
    use qt_exchange::Exchange;
    let f = common::fixture();
    let (client, _url, _sim) = common::sim().await;
    let sh = f
        .shared(Settings {
            chart_candles: 50,
            ..Settings::default()
        })
        .await;
    let klines = client
        .klines(common::SYMBOL, "5m", None, None, Some(60))
        .await
        .unwrap();
    let last = klines
        .iter()
        .rev()
        .find(|k| k.close_time < f.clock.now_ms())
        .unwrap();
    // The one candle the stream's tail held: the newest.
    apply(
        &f,
        &sh,
        Event::CandleClosed(CandleClosed {
            symbol: common::SYMBOL.into(),
            interval: "5m".into(),
            open_time: last.open_time,
            close_time: last.close_time,
            open: last.open,
            high: last.high,
            low: last.low,
            close: last.close,
            volume: last.volume,
            quote_volume: last.quote_volume,
            trades: last.trades,
        }),
    )
    .await;
    let intel = portfolio_intelligence::Intel::new(sh.clone(), client);
    assert_eq!(intel.backfill_charts().await.unwrap(), 1);
    let charts = api::dashboard_state(&sh).charts;
    let c = &charts[0];
    assert_eq!(c.candles.len(), 50);
    assert!(
        c.candles.windows(2).all(|w| w[1].t - w[0].t == FIVE_MIN),
        "in order, once each"
    );
    assert_eq!(c.candles.last().unwrap().t, last.open_time);
    assert_eq!(c.candles.last().unwrap().c, last.close);
    assert_eq!(
        intel.backfill_charts().await.unwrap(),
        0,
        "full: nothing asked again"
    );
}
