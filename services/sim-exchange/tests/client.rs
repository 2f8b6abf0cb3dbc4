//! Our Binance client (`qt-exchange`), unchanged, against the simulator: market data, orders,
//! conditional orders, the user data stream, funding (the account update's reason and the income
//! endpoint), and an unknown outcome settled without a duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_events::Side;
use qt_exchange::ws::UserEvent;
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig, NewAlgoOrder, NewOrder, Resolution};
use rust_decimal::Decimal;
use serde_json::json;

fn client(sim: &Sim, timeout_ms: u64) -> (BinanceClient, ExchangeConfig) {
    let mut cfg = ExchangeConfig::default()
        .with_urls(sim.base.clone(), sim.ws_base.clone())
        .with_credentials(KEY, SECRET);
    cfg.request_timeout_ms = timeout_ms;
    cfg.recv_window_ms = 1_000;
    cfg.resolve_margin_ms = 200;
    (
        BinanceClient::new(cfg.clone(), qt_events::clock::system()).unwrap(),
        cfg,
    )
}

#[tokio::test]
async fn binance_client_trades_and_streams_against_the_sim_unchanged() {
    let sim = start(replay_config()).await;
    let (ex, cfg) = client(&sim, 5_000);
    ex.sync_time().await.unwrap();
    let filters = ex.symbol_filters("BTCUSDT").await.unwrap();
    assert_eq!(filters.min_notional, dec("100"));
    // The simulator's exchangeInfo reads whole: no symbol refused, every rule set.
    let info = ex.exchange_info().await.unwrap();
    assert!(info.invalid.is_empty(), "{:?}", info.invalid);
    for rule in [
        filters.tick_size,
        filters.step_size,
        filters.min_qty,
        filters.max_qty,
        filters.min_price,
        filters.max_price,
        filters.market_step_size,
        filters.market_min_qty,
        filters.market_max_qty,
    ] {
        assert!(rule > dec("0"), "{filters:?}");
    }
    let klines = ex
        .klines("BTCUSDT", "5m", None, None, Some(10))
        .await
        .unwrap();
    assert_eq!(klines.len(), 10);
    let mark = ex.mark_price("BTCUSDT").await.unwrap();

    let (mut events, handle) = qt_exchange::ws::spawn_user_stream(ex.clone(), &cfg, 256);
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(UserEvent::Connected));

    let order = ex
        .new_order(&NewOrder::market(
            "BTCUSDT",
            Side::Buy,
            dec("0.01"),
            "client-open-1",
        ))
        .await
        .unwrap();
    assert_eq!(order.client_order_id, "client-open-1");
    let positions = ex.positions(Some("BTCUSDT")).await.unwrap();
    assert_eq!(positions[0].position_amt, dec("0.01"));

    let trigger = (mark.mark_price * dec("0.99")).round_dp(1);
    let algo = ex
        .new_algo_order(&NewAlgoOrder::stop_close_position(
            "BTCUSDT",
            Side::Sell,
            trigger,
            "client-sl-1",
        ))
        .await
        .unwrap();
    assert_eq!(algo.client_algo_id, "client-sl-1");
    assert_eq!(ex.open_algo_orders(Some("BTCUSDT")).await.unwrap().len(), 1);

    sim.control(
        &format!("/sim/mark?symbol=BTCUSDT&price={}", trigger - Decimal::ONE),
        None,
    )
    .await;
    let mut saw_trade = false;
    let mut saw_finished = false;
    while !(saw_trade && saw_finished) {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        match ev {
            UserEvent::OrderTradeUpdate(u) if u.order.client_order_id == "client-sl-1" => {
                saw_trade |= u.order.cum_filled_qty == dec("0.01");
            }
            UserEvent::AlgoUpdate(a) if a.order.client_algo_id == "client-sl-1" => {
                saw_finished |= a.order.status == qt_exchange::AlgoStatus::Finished;
            }
            _ => {}
        }
    }
    let positions = ex.positions(Some("BTCUSDT")).await.unwrap();
    assert!(positions.iter().all(|p| p.position_amt.is_zero()));
    handle.shutdown().await;
    sim.stop().await;
}

#[tokio::test]
async fn client_settles_a_lost_response_by_adopting_the_order_not_resending() {
    let sim = start(replay_config()).await;
    let (ex, _) = client(&sim, 300);
    ex.sync_time().await.unwrap();
    ex.symbol_filters("BTCUSDT").await.unwrap();
    sim.control(
        "/sim/faults",
        Some(json!({"loseNext": 1, "lostResponseMs": 2000})),
    )
    .await;
    let mut order = NewOrder::market("BTCUSDT", Side::Buy, dec("0.01"), "client-lost-1");
    order.reference_price = Some(dec("30000"));
    let err = ex
        .new_order(&order)
        .await
        .expect_err("the response was lost");
    assert!(err.is_unknown_outcome(), "{err}");
    let fence = err
        .fence()
        .expect("an unknown outcome carries its recvWindow fence");
    let res = qt_exchange::resolve_unknown_order(&ex, "BTCUSDT", "client-lost-1", fence, 200)
        .await
        .unwrap();
    let Resolution::Found(found) = res else {
        panic!("the order was placed: {res:?}")
    };
    assert_eq!(found.client_order_id, "client-lost-1");
    let all = sim
        .signed(
            reqwest::Method::GET,
            "/fapi/v1/allOrders",
            &[("symbol", "BTCUSDT")],
        )
        .await;
    assert_eq!(all.body.as_array().unwrap().len(), 1, "exactly one order");
    // And an id that never reached the simulator resolves as never executed.
    let res = qt_exchange::resolve_unknown_order(&ex, "BTCUSDT", "client-lost-2", fence, 0)
        .await
        .unwrap();
    assert_eq!(res, Resolution::NeverExecuted);
    sim.stop().await;
}

async fn next_user(
    events: &mut tokio::sync::mpsc::Receiver<UserEvent>,
    pred: impl Fn(&UserEvent) -> bool,
) -> UserEvent {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        if pred(&ev) {
            return ev;
        }
    }
}

#[tokio::test]
async fn client_streams_recover_from_a_drop_and_from_listen_key_expiry() {
    use qt_exchange::ws::{MarketEvent, MarketStream};
    let sim = start(replay_config()).await;
    let (ex, cfg) = client(&sim, 5_000);
    let (mut user, user_handle) = qt_exchange::ws::spawn_user_stream(ex.clone(), &cfg, 256);
    let streams = [
        MarketStream::Kline {
            symbol: "BTCUSDT".into(),
            interval: "5m".into(),
        },
        MarketStream::BookTicker {
            symbol: "BTCUSDT".into(),
        },
    ];
    let (mut market, market_handle) = qt_exchange::ws::spawn_market_streams(&cfg, &streams, 256);
    next_user(&mut user, |e| *e == UserEvent::Connected).await;
    // Both market connections (/market and /public) are up before the first step.
    let mut connected = 0;
    while connected < 2 {
        if let MarketEvent::Connected { .. } =
            tokio::time::timeout(Duration::from_secs(10), market.recv())
                .await
                .unwrap()
                .unwrap()
        {
            connected += 1;
        }
    }
    sim.step(1).await;
    let mut got = (false, false);
    while !(got.0 && got.1) {
        match tokio::time::timeout(Duration::from_secs(10), market.recv())
            .await
            .unwrap()
            .unwrap()
        {
            MarketEvent::Kline(k) => got.0 |= k.kline.closed,
            MarketEvent::BookTicker(_) => got.1 = true,
            _ => {}
        }
    }

    // Dropped connections come back by themselves and keep delivering.
    sim.control("/sim/ws/drop", None).await;
    next_user(&mut user, |e| *e == UserEvent::Connected).await;
    let mut reconnected = 0;
    while reconnected < 2 {
        if let MarketEvent::Connected { .. } =
            tokio::time::timeout(Duration::from_secs(10), market.recv())
                .await
                .unwrap()
                .unwrap()
        {
            reconnected += 1;
        }
    }
    ex.new_order(&NewOrder::market(
        "BTCUSDT",
        Side::Buy,
        dec("0.01"),
        "after-drop",
    ))
    .await
    .unwrap();
    next_user(
        &mut user,
        |e| matches!(e, UserEvent::OrderTradeUpdate(u) if u.order.client_order_id == "after-drop"),
    )
    .await;
    sim.step(1).await;
    loop {
        if let MarketEvent::Kline(k) = tokio::time::timeout(Duration::from_secs(10), market.recv())
            .await
            .unwrap()
            .unwrap()
        {
            assert!(k.kline.closed);
            break;
        }
    }

    // An expired listenKey is reported, re-created, and the stream resumes.
    sim.control("/sim/listenKey/expire", None).await;
    next_user(&mut user, |e| {
        matches!(e, UserEvent::ListenKeyExpired { .. })
    })
    .await;
    next_user(&mut user, |e| *e == UserEvent::Connected).await;
    ex.new_order(&NewOrder::market(
        "BTCUSDT",
        Side::Sell,
        dec("0.01"),
        "after-expiry",
    ))
    .await
    .unwrap();
    next_user(&mut user, |e| matches!(e, UserEvent::OrderTradeUpdate(u) if u.order.client_order_id == "after-expiry")).await;
    user_handle.shutdown().await;
    market_handle.shutdown().await;
    sim.stop().await;
}

#[tokio::test]
async fn client_reads_funding_from_the_account_update_reason_and_the_income_endpoint() {
    use qt_exchange::ws::AccountUpdateReason;
    use qt_exchange::{IncomeQuery, IncomeType};
    // The repo's BTCUSDT candles: 14:15 UTC after the warmup, funding at 16:00 (21 candles
    // away) at the default 0.0001; the 15:55 candle closes at 29274.28.
    let sim = start(replay_config()).await;
    let (ex, cfg) = client(&sim, 5_000);
    ex.sync_time().await.unwrap();
    let (mut events, handle) = qt_exchange::ws::spawn_user_stream(ex.clone(), &cfg, 256);
    assert_eq!(
        next_user(&mut events, |e| matches!(e, UserEvent::Connected)).await,
        UserEvent::Connected
    );
    ex.new_order(&NewOrder::market(
        "BTCUSDT",
        Side::Buy,
        dec("0.01"),
        "client-funded-1",
    ))
    .await
    .unwrap();
    sim.step(21).await;
    let ev = next_user(&mut events, |e| {
        matches!(e, UserEvent::AccountUpdate(a) if a.data.reason == AccountUpdateReason::FundingFee)
    })
    .await;
    let UserEvent::AccountUpdate(a) = ev else {
        panic!("{ev:?}")
    };
    // 0.01 × 29274.28 × 0.0001 = 0.029274280, paid by the long.
    assert_eq!(a.data.balances[0].balance_change, dec("-0.02927428"));
    let income = ex
        .income(&IncomeQuery {
            income_type: Some(IncomeType::FundingFee),
            ..IncomeQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(income.len(), 1, "{income:?}");
    assert_eq!(income[0].symbol, "BTCUSDT");
    assert_eq!(income[0].income, dec("-0.02927428"));
    assert_eq!(income[0].income_type, IncomeType::FundingFee);
    assert!(income[0].tran_id.is_some());
    // A start time after it leaves it out.
    let later = ex
        .income(&IncomeQuery {
            income_type: Some(IncomeType::FundingFee),
            start_time: Some(income[0].time + 1),
            ..IncomeQuery::default()
        })
        .await
        .unwrap();
    assert!(later.is_empty());
    let mark = ex.mark_price("BTCUSDT").await.unwrap();
    assert_eq!(mark.next_funding_time, 1_691_164_800_000 + 8 * 3_600_000);
    assert_eq!(mark.last_funding_rate, dec("0.0001"));
    handle.shutdown().await;
    sim.stop().await;
}
