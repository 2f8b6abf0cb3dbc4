//! Hedge mode (`dualSidePosition=true`) as Binance documents it: LONG and SHORT positions of
//! one symbol kept apart, `positionSide` required on every order and algo order, `reduceOnly`
//! refused (a close is the opposite side on the position's side), `closePosition` stops per
//! side; positions, orders and user-data events carry the side. Our client (`qt-exchange`),
//! configured for hedge mode, against the real simulator; the refusals as raw requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_events::Side;
use qt_exchange::ws::UserEvent;
use qt_exchange::{
    AlgoStatus, BinanceClient, Exchange, ExchangeConfig, NewAlgoOrder, NewOrder, PositionMode,
    PositionSideWire,
};
use reqwest::Method;
use rust_decimal::Decimal;

fn hedge_client(sim: &Sim) -> (BinanceClient, ExchangeConfig) {
    let mut cfg = ExchangeConfig::default()
        .with_urls(sim.base.clone(), sim.ws_base.clone())
        .with_credentials(KEY, SECRET);
    cfg.account_modes.position_mode = PositionMode::Hedge;
    (
        BinanceClient::new(cfg.clone(), qt_events::clock::system()).unwrap(),
        cfg,
    )
}

async fn set_hedge(sim: &Sim, on: bool) {
    let r = sim
        .signed(
            Method::POST,
            "/fapi/v1/positionSide/dual",
            &[("dualSidePosition", if on { "true" } else { "false" })],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// The signed position of `symbol` on `side` from `/fapi/v3/positionRisk` (0 when none).
async fn leg(ex: &BinanceClient, symbol: &str, side: PositionSideWire) -> Decimal {
    ex.positions(Some(symbol))
        .await
        .unwrap()
        .iter()
        .find(|p| p.position_side == side)
        .map_or(Decimal::ZERO, |p| p.position_amt)
}

#[tokio::test]
async fn a_long_and_a_short_of_one_symbol_are_kept_apart_and_each_stop_closes_only_its_side() {
    let sim = start(replay_config()).await;
    set_hedge(&sim, true).await;
    let (ex, cfg) = hedge_client(&sim);
    ex.sync_time().await.unwrap();
    assert!(ex.dual_side_position().await.unwrap());
    let (mut events, handle) = qt_exchange::ws::spawn_user_stream(ex.clone(), &cfg, 256);
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(UserEvent::Connected));
    let mark = ex.mark_price("BTCUSDT").await.unwrap().mark_price;

    // BUY opens the LONG side, SELL the SHORT side: two positions, not a net of them.
    let long = NewOrder::market("BTCUSDT", Side::Buy, dec("0.01"), "hedge-long-1");
    let o = ex.new_order(&long).await.unwrap();
    assert_eq!(o.position_side, PositionSideWire::Long);
    let short = NewOrder::market("BTCUSDT", Side::Sell, dec("0.02"), "hedge-short-1");
    let o = ex.new_order(&short).await.unwrap();
    assert_eq!(o.position_side, PositionSideWire::Short);
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Long).await,
        dec("0.01")
    );
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Short).await,
        dec("-0.02")
    );
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Both).await,
        Decimal::ZERO
    );

    // Each side gets its own closePosition stop: SELL closes the LONG, BUY the SHORT.
    let long_trigger = (mark * dec("0.99")).round_dp(1);
    let short_trigger = (mark * dec("1.01")).round_dp(1);
    let sl_long = NewAlgoOrder::stop_close_position("BTCUSDT", Side::Sell, long_trigger, "sl-long");
    let a = ex.new_algo_order(&sl_long).await.unwrap();
    assert_eq!(a.position_side, PositionSideWire::Long);
    let sl_short =
        NewAlgoOrder::stop_close_position("BTCUSDT", Side::Buy, short_trigger, "sl-short");
    let a = ex.new_algo_order(&sl_short).await.unwrap();
    assert_eq!(a.position_side, PositionSideWire::Short);
    assert_eq!(ex.open_algo_orders(Some("BTCUSDT")).await.unwrap().len(), 2);

    // The mark falls through the long's stop: the LONG closes, the SHORT stays, protected.
    sim.control(
        &format!(
            "/sim/mark?symbol=BTCUSDT&price={}",
            long_trigger - Decimal::ONE
        ),
        None,
    )
    .await;
    let (mut closed_long, mut finished, mut account_long) = (false, false, false);
    while !(closed_long && finished && account_long) {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        match ev {
            UserEvent::OrderTradeUpdate(u) if u.order.client_order_id == "sl-long" => {
                assert_eq!(u.order.position_side, PositionSideWire::Long);
                assert!(!u.order.reduce_only, "no reduceOnly in hedge mode");
                closed_long |= u.order.cum_filled_qty == dec("0.01");
            }
            UserEvent::AlgoUpdate(a) if a.order.client_algo_id == "sl-long" => {
                assert_eq!(a.order.position_side, PositionSideWire::Long);
                finished |= a.order.status == AlgoStatus::Finished;
            }
            UserEvent::AccountUpdate(u) => {
                for p in &u.data.positions {
                    // The short's side is only ever reported as opened, never touched.
                    match p.position_side {
                        PositionSideWire::Long => account_long |= p.position_amt.is_zero(),
                        PositionSideWire::Short => assert_eq!(p.position_amt, dec("-0.02")),
                        PositionSideWire::Both => panic!("a BOTH position in hedge mode: {p:?}"),
                    }
                }
            }
            UserEvent::AlgoUpdate(a) if a.order.client_algo_id == "sl-short" => {
                assert_eq!(
                    a.order.status,
                    AlgoStatus::New,
                    "the short's stop moved: {a:?}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Long).await,
        Decimal::ZERO
    );
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Short).await,
        dec("-0.02")
    );
    let open = ex.open_algo_orders(Some("BTCUSDT")).await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].client_algo_id, "sl-short");
    assert_eq!(open[0].position_side, PositionSideWire::Short);

    // Closing the short by a reducing order: the client sends BUY SHORT, never reduceOnly.
    let close =
        NewOrder::market("BTCUSDT", Side::Buy, dec("0.02"), "hedge-close-short").reduce_only(true);
    let o = ex.new_order(&close).await.unwrap();
    assert_eq!(o.position_side, PositionSideWire::Short);
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Short).await,
        Decimal::ZERO
    );
    handle.shutdown().await;
    sim.stop().await;
}

#[tokio::test]
async fn orders_that_do_not_name_a_side_of_the_accounts_mode_are_refused_with_binances_codes() {
    let sim = start(replay_config()).await;
    let market = |side: &'static str, ps: Option<&'static str>| {
        let mut p = vec![
            ("symbol", "BTCUSDT"),
            ("side", side),
            ("type", "MARKET"),
            ("quantity", "0.01"),
        ];
        if let Some(ps) = ps {
            p.push(("positionSide", ps));
        }
        p
    };
    // One-way mode: LONG or SHORT is not the account's setting.
    assert_eq!(sim.order(&market("BUY", Some("LONG"))).await.code(), -4061);
    assert_eq!(sim.order(&market("BUY", Some("BOTH"))).await.status, 200);
    let mut close = market("SELL", Some("BOTH"));
    close.push(("reduceOnly", "true"));
    assert_eq!(sim.order(&close).await.status, 200);

    set_hedge(&sim, true).await;
    // Hedge mode: positionSide required, BOTH is not a side here, reduceOnly not accepted.
    assert_eq!(sim.order(&market("BUY", None)).await.code(), -4061);
    assert_eq!(sim.order(&market("BUY", Some("BOTH"))).await.code(), -4061);
    assert_eq!(
        sim.order(&market("BUY", Some("SIDEWAYS"))).await.code(),
        -1130
    );
    let mut ro = market("SELL", Some("LONG"));
    ro.push(("reduceOnly", "true"));
    assert_eq!(sim.order(&ro).await.code(), -1106);
    // Closing a side that holds nothing is a reduce-only reject.
    assert_eq!(sim.order(&market("SELL", Some("LONG"))).await.code(), -2022);
    assert_eq!(sim.order(&market("BUY", Some("LONG"))).await.status, 200);
    assert_eq!(sim.order(&market("SELL", Some("SHORT"))).await.status, 200);
    // A close larger than its side fills only the side, never flipping it into the other.
    let r = sim
        .order(&[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("positionSide", "LONG"),
            ("type", "MARKET"),
            ("quantity", "0.05"),
            ("newOrderRespType", "RESULT"),
        ])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(field_dec(&r.body, "executedQty"), dec("0.01"));
    let risk = sim
        .signed(
            Method::GET,
            "/fapi/v3/positionRisk",
            &[("symbol", "BTCUSDT")],
        )
        .await;
    let rows = risk.body.as_array().unwrap();
    let amt = |side: &str| {
        rows.iter()
            .find(|r| r["positionSide"] == side)
            .map_or(Decimal::ZERO, |r| field_dec(r, "positionAmt"))
    };
    assert_eq!(amt("LONG"), Decimal::ZERO);
    assert_eq!(amt("SHORT"), dec("-0.01"));
    assert!(rows.iter().all(|r| r["positionSide"] != "BOTH"), "{rows:?}");

    // Algo orders: the same rules, and a closePosition stop cannot open (BUY LONG).
    let algo =
        |side: &'static str, ps: Option<&'static str>, extra: (&'static str, &'static str)| {
            let mut p = vec![
                ("algoType", "CONDITIONAL"),
                ("symbol", "BTCUSDT"),
                ("side", side),
                ("type", "STOP_MARKET"),
                ("triggerPrice", "90000"),
                extra,
            ];
            if let Some(ps) = ps {
                p.push(("positionSide", ps));
            }
            p
        };
    let reduce_only = |ps: &'static str| {
        let mut p = algo("BUY", Some(ps), ("reduceOnly", "true"));
        p.push(("quantity", "0.01"));
        p
    };
    let post = |p: Vec<(&'static str, &'static str)>| {
        let sim = &sim;
        async move { sim.signed(Method::POST, "/fapi/v1/algoOrder", &p).await }
    };
    assert_eq!(
        post(algo("BUY", None, ("closePosition", "true")))
            .await
            .code(),
        -4061
    );
    assert_eq!(
        post(algo("BUY", Some("LONG"), ("closePosition", "true")))
            .await
            .code(),
        -4061
    );
    assert_eq!(post(reduce_only("SHORT")).await.code(), -1106);
    let ok = post(algo("BUY", Some("SHORT"), ("closePosition", "true"))).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["positionSide"], "SHORT");

    // The mode cannot change while a position or an order is open.
    let r = sim
        .signed(
            Method::POST,
            "/fapi/v1/positionSide/dual",
            &[("dualSidePosition", "false")],
        )
        .await;
    assert_eq!(r.code(), -4067);
    sim.stop().await;
}

#[tokio::test]
async fn a_hedge_accounts_legs_survive_a_restart_of_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = replay_config();
    cfg.state_dir = Some(dir.path().to_path_buf());
    let sim = start(cfg.clone()).await;
    set_hedge(&sim, true).await;
    let (ex, _) = hedge_client(&sim);
    ex.sync_time().await.unwrap();
    ex.new_order(&NewOrder::market("BTCUSDT", Side::Buy, dec("0.01"), "l1"))
        .await
        .unwrap();
    ex.new_order(&NewOrder::market("BTCUSDT", Side::Sell, dec("0.03"), "s1"))
        .await
        .unwrap();
    sim.stop().await;

    let sim = start(cfg).await;
    let (ex, _) = hedge_client(&sim);
    ex.sync_time().await.unwrap();
    assert!(ex.dual_side_position().await.unwrap());
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Long).await,
        dec("0.01")
    );
    assert_eq!(
        leg(&ex, "BTCUSDT", PositionSideWire::Short).await,
        dec("-0.03")
    );
    sim.stop().await;
}
