//! 200 entry intents (25 random-walk symbols × 8 adds) published in bursts while execution and
//! exit-brain are SIGKILLed at random moments and restarted, several times each. Afterwards:
//! every intent has a final outcome (filled or refused); no intent made two orders (each
//! symbol's position on the exchange is exactly the sum of its filled intents); every open
//! position has its stop resting on the exchange within 5 s of the last restart; and the
//! positions the streams report agree with the exchange.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use qt_events::{Decimal, Envelope, Event, OpenPosition, OrderKind, PositionSide, Side};
use qt_exchange::{Exchange, OrderType};
use rand::Rng;

const SYMBOLS: usize = 25;
const ADDS: usize = 8;

#[test]
fn services_sigkilled_at_random_during_200_intents_lose_none_duplicate_none_and_protect_every_position()
 {
    let symbols: Vec<String> = (1..=SYMBOLS).map(|i| format!("K{i:02}USDT")).collect();
    let list = symbols.join(",");
    let mut stack = common::Stack::start_with(
        "chaos",
        &[
            "--symbols",
            &list,
            "--warmup-candles",
            "50",
            "--no-rate-limits",
        ],
        &["execution", "exit-brain"],
        &[
            ("QT_EXECUTION__LIMITS__MAX_CONCURRENT_POSITIONS", "30"),
            ("QT_EXECUTION__LIMITS__MAX_GROSS_EXPOSURE", "1000000"),
            ("QT_EXECUTION__LIMITS__MAX_SYMBOL_NOTIONAL", "100000"),
            ("QT_EXECUTION__LIMITS__MAX_SIDE_FRACTION", "1"),
            ("QT_EXECUTION__RECONCILE_INTERVAL", "2s"),
            ("QT_EXECUTION__POLL_INTERVAL", "1s"),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ex = stack.exchange();
    let clock = qt_events::clock::system();
    let mut intents: Vec<(String, String, Decimal)> = Vec::new();
    let mut envs: Vec<Envelope> = Vec::new();
    for (i, s) in symbols.iter().enumerate() {
        let price = rt.block_on(ex.mark_price(s)).unwrap().mark_price;
        let qty = (Decimal::from(20) / price).round_dp(2);
        for a in 0..ADDS {
            let id = format!("e2e-chaos-{s}-{a}");
            intents.push((id.clone(), s.clone(), qty));
            envs.push(Envelope::new(
                Event::OpenPosition(OpenPosition {
                    intent_id: id,
                    symbol: s.clone(),
                    side: if i % 2 == 0 {
                        PositionSide::Long
                    } else {
                        PositionSide::Short
                    },
                    quantity: qty,
                    order_type: OrderKind::Market,
                    limit_price: None,
                    leverage: 10,
                    reference_price: price,
                    signal: None,
                }),
                "e2e",
                &*clock,
            ));
        }
    }
    // Interleave symbols so every burst touches many of them.
    envs.sort_by_key(|e| match &e.event {
        Event::OpenPosition(o) => o.intent_id.chars().rev().collect::<String>(),
        _ => String::new(),
    });

    let mut rng = rand::rng();
    let mut kills: HashMap<&str, usize> = HashMap::new();
    let mut next_kill = Instant::now() + Duration::from_millis(rng.random_range(100..600));
    for burst in envs.chunks(10) {
        stack.publish_all(burst);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..120)));
        if Instant::now() >= next_kill {
            let i = rng.random_range(0..stack.services.len());
            let (name, _, child) = &mut stack.services[i];
            child.kill9();
            *kills.entry(name).or_default() += 1;
            std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
            child.start();
            next_kill = Instant::now() + Duration::from_millis(rng.random_range(100..600));
        }
    }
    // A few more kills of each while the backlog drains.
    for _ in 0..2 {
        for i in 0..stack.services.len() {
            std::thread::sleep(Duration::from_millis(rng.random_range(50..300)));
            let (name, _, child) = &mut stack.services[i];
            child.kill9();
            *kills.entry(name).or_default() += 1;
            std::thread::sleep(Duration::from_millis(rng.random_range(50..300)));
            child.start();
        }
    }
    assert!(kills.values().all(|n| *n >= 2), "kills: {kills:?}");
    stack.wait_ready(60);

    // Every intent reaches a final outcome.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (filled, refused) = loop {
        let (filled, refused) = outcomes(&stack);
        let done = intents
            .iter()
            .filter(|(id, _, _)| filled.contains_key(id) || refused.contains(id))
            .count();
        if done == intents.len() {
            break (filled, refused);
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} intents have an outcome (kills {kills:?})\n{}",
            intents.len(),
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        filled.len() >= intents.len() / 2,
        "{} filled, {} refused",
        filled.len(),
        refused.len()
    );

    // No intent made two orders: the exchange holds exactly the filled intents' sum.
    let mut expected: BTreeMap<String, Decimal> = BTreeMap::new();
    for (id, sym, _) in &intents {
        if let Some(q) = filled.get(id) {
            *expected.entry(sym.clone()).or_default() += *q;
        }
    }
    expected.retain(|_, q| !q.is_zero());
    let held = |rt: &tokio::runtime::Runtime| -> BTreeMap<String, Decimal> {
        rt.block_on(ex.positions(None))
            .unwrap()
            .into_iter()
            .filter(|p| !p.position_amt.is_zero())
            .map(|p| (p.symbol, p.position_amt.abs()))
            .collect()
    };
    assert_eq!(held(&rt), expected, "exchange positions vs filled intents");

    // Every open position has its stop on the exchange within 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let algos = rt.block_on(ex.open_algo_orders(None)).unwrap();
        let positions = rt.block_on(ex.positions(None)).unwrap();
        let unprotected: Vec<String> = positions
            .iter()
            .filter(|p| !p.position_amt.is_zero())
            .filter(|p| {
                let close = if p.position_amt > Decimal::ZERO {
                    Side::Sell
                } else {
                    Side::Buy
                };
                !algos.iter().any(|a| {
                    a.symbol == p.symbol && a.order_type == OrderType::StopMarket && a.side == close
                })
            })
            .map(|p| p.symbol.clone())
            .collect();
        if unprotected.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no stop on the exchange for {unprotected:?}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The positions the streams report agree with the exchange (after reconciliation).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let streams = open_positions(&stack);
        let exchange = held(&rt);
        if streams == exchange {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "exchange {exchange:?} vs streams {streams:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stack.stop();
}

/// (filled quantity per intent, refused intents) on `orders`.
fn outcomes(stack: &common::Stack) -> (HashMap<String, Decimal>, HashSet<String>) {
    let mut filled = HashMap::new();
    let mut refused = HashSet::new();
    for e in stack.stream("orders") {
        match e.event {
            Event::OrderFilled(f) if f.intent_id.starts_with("e2e-chaos-") => {
                filled.insert(f.intent_id, f.cumulative_qty);
            }
            Event::OrderRejected(r) if r.intent_id.starts_with("e2e-chaos-") => {
                refused.insert(r.intent_id);
            }
            _ => {}
        }
    }
    (filled, refused)
}

/// The open positions as the `positions` stream tells them: the last fact per symbol.
fn open_positions(stack: &common::Stack) -> BTreeMap<String, Decimal> {
    let mut open = BTreeMap::new();
    for e in stack.stream("positions") {
        match e.event {
            Event::PositionOpened(p) => {
                open.insert(p.symbol, p.quantity);
            }
            Event::PositionChanged(p) => {
                open.insert(p.symbol, p.quantity);
            }
            Event::PositionClosed(p) => {
                open.remove(&p.symbol);
            }
            _ => {}
        }
    }
    open
}
