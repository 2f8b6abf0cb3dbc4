//! Requests applied to a real exchange (an [`App`] on the synthetic market): whatever the
//! parameters, no request panics, every refusal is a Binance error, and the books stay
//! consistent.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use qt_events::Decimal;
use serde_json::Value;

use super::account::{AccountInfo, Income, PositionRisk, SetLeverage};
use super::algos::{CancelAlgo, NewAlgo, QueryAlgo};
use super::orders::{
    AllOrders, CancelAll, CancelOrder, NewOrder, OpenOrders, QueryOrder, UserTrades,
};
use super::{Args, Request};
use crate::app::App;
use crate::config::{ApiKey, SimConfig};
use crate::error::ApiError;
use crate::exchange::Exchange;
use crate::exchange::book::AlgoStatus;
use crate::exchange::sides::{PosSide, split_key};
use crate::params::Params;

fn app() -> App {
    App::new(SimConfig {
        keys: vec![ApiKey {
            key: "k".into(),
            secret: "s".into(),
        }],
        warmup_candles: 50,
        ..SimConfig::default()
    })
    .unwrap()
}

/// Parse `R` from `p` and apply it for `account` at `now`.
fn send<R: Request>(app: &App, account: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
    let args = Args {
        params: p,
        body: &[],
        instruments: &app.instruments,
    };
    R::parse(&args)?.apply(app, account, now)
}

const NAMES: &[&str] = &[
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "timeInForce",
    "reduceOnly",
    "closePosition",
    "newClientOrderId",
    "origClientOrderId",
    "orderId",
    "algoType",
    "triggerPrice",
    "workingType",
    "callbackRate",
    "activatePrice",
    "clientAlgoId",
    "algoId",
    "leverage",
    "limit",
    "positionSide",
    "newOrderRespType",
    "incomeType",
    "startTime",
    "endTime",
];
const VALUES: &[&str] = &[
    "BTCUSDT",
    "ETHUSDT",
    "BUY",
    "SELL",
    "MARKET",
    "LIMIT",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
    "CONDITIONAL",
    "GTC",
    "IOC",
    "FOK",
    "GTX",
    "true",
    "false",
    "MARK_PRICE",
    "RESULT",
    "FUNDING_FEE",
    "0",
    "-1",
    "0.001",
    "0.01",
    "1",
    "5",
    "125",
    "1000",
    "30000",
    "29000.5",
    "31000",
    "2000",
    "9999999",
    "10000001",
    "79228162514264337593543950335",
    "0.0000000000000000000000000001",
    "c1",
    "c2",
    "BOTH",
    "LONG",
    "SHORT",
    "1000001",
    "2000001",
    "9223372036854775807",
    "-9223372036854775808",
];

fn arb_params() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![3 => proptest::sample::select(NAMES).prop_map(str::to_string), 1 => "[a-zA-Z]{0,8}"],
        prop_oneof![4 => proptest::sample::select(VALUES).prop_map(str::to_string), 1 => "\\PC{0,12}"],
    );
    proptest::collection::vec(pair, 0..10).prop_map(|v| {
        v.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn check_invariants(e: &Exchange) -> Result<(), TestCaseError> {
    for (_, acc) in e.accounts() {
        // A hedge-mode leg never flips into the other side.
        for (key, p) in &acc.positions {
            match split_key(key).1 {
                PosSide::Long => prop_assert!(p.qty >= Decimal::ZERO, "{} {:?}", key, p),
                PosSide::Short => prop_assert!(p.qty <= Decimal::ZERO, "{} {:?}", key, p),
                PosSide::Both => {}
            }
        }
        for (id, o) in &acc.orders {
            prop_assert_eq!(
                o.status.is_open(),
                acc.open_orders.contains(id),
                "open index of {}",
                id
            );
            prop_assert!(o.executed_qty <= o.orig_qty);
        }
        for t in &acc.trades {
            prop_assert!(
                t.commission > Decimal::ZERO,
                "fee not charged on trade {}",
                t.id
            );
            prop_assert!(t.price > Decimal::ZERO && t.qty > Decimal::ZERO);
        }
        for id in &acc.open_algos {
            prop_assert!(
                acc.algos
                    .get(id)
                    .is_some_and(|a| matches!(a.status, AlgoStatus::New | AlgoStatus::Triggered))
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_requests_never_panic_and_keep_the_books_consistent(
        ops in proptest::collection::vec((0u8..22, arb_params()), 1..40)
    ) {
        let app = app();
        let mut now = 1_700_000_000_000i64;
        for (op, q) in ops {
            now += 1_000;
            let p = Params::new(&q, "");
            let r: Result<Value, ApiError> = match op {
                0..=3 => send::<NewOrder>(&app, "k", &p, now),
                4 => send::<QueryOrder>(&app, "k", &p, now),
                5 => send::<CancelOrder>(&app, "k", &p, now),
                6 => send::<OpenOrders>(&app, "k", &p, now),
                7 => send::<AllOrders>(&app, "k", &p, now),
                8 => send::<CancelAll>(&app, "k", &p, now),
                9 => send::<UserTrades>(&app, "k", &p, now),
                10 | 11 => send::<NewAlgo>(&app, "k", &p, now),
                12 => send::<CancelAlgo>(&app, "k", &p, now),
                13 => send::<QueryAlgo>(&app, "k", &p, now),
                14 => send::<SetLeverage>(&app, "k", &p, now),
                15 => send::<PositionRisk<true>>(&app, "k", &p, now),
                16 => send::<AccountInfo<false>>(&app, "k", &p, now),
                17 => { app.with_exchange(|e| e.step(now)); Ok(Value::Null) }
                18 => {
                    let px = p.decimal("price").ok().flatten().unwrap_or(Decimal::ONE);
                    let symbol = p.get("symbol").unwrap_or("BTCUSDT");
                    app.with_exchange(|e| e.set_mark(symbol, px, now)).map(|()| Value::Null)
                }
                19 => send::<Income>(&app, "k", &p, now),
                20 => app.with_exchange(|e| {
                    let dual = e.account("k").is_ok_and(|a| !a.dual_side_position);
                    e.set_position_mode("k", dual).map(|()| Value::Null)
                }),
                _ => send::<NewOrder>(&app, "nobody", &p, now),
            };
            if let Err(err) = r {
                prop_assert!(err.code < 0, "{:?}", err);
                prop_assert!(err.status == 400 || err.status == 401, "{:?}", err);
            }
            app.read(check_invariants)?;
        }
    }
}

#[test]
fn limit_order_then_candles_fill_and_fee_and_pnl_reach_the_wallet() {
    let app = app();
    let last = app.read(|e| e.market().get("BTCUSDT").unwrap().last_price());
    let p = Params::new(
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newOrderRespType=RESULT",
        "",
    );
    let r = send::<NewOrder>(&app, "k", &p, 1).unwrap();
    assert_eq!(r["status"], "FILLED");
    app.read(|e| {
        let acc = e.account("k").unwrap();
        let t = &acc.trades[0];
        assert!(t.price >= last);
        assert_eq!(acc.wallet, Decimal::new(10_000, 0) - t.commission);
    });
    let p = Params::new(
        "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.01&reduceOnly=true",
        "",
    );
    send::<NewOrder>(&app, "k", &p, 2).unwrap();
    app.read(|e| {
        let acc = e.account("k").unwrap();
        let (a, b) = (&acc.trades[0], &acc.trades[1]);
        assert_eq!(b.realized_pnl, (b.price - a.price) * Decimal::new(1, 2));
        assert_eq!(
            acc.wallet,
            Decimal::new(10_000, 0) - a.commission - b.commission + b.realized_pnl
        );
        assert!(acc.positions["BTCUSDT"].is_flat());
    });
}
