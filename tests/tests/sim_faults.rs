//! Simulator faults while entries are placed: 30% of requests answered 503 (not executed), 30%
//! of order placements executed with their response lost, WebSockets dropped. Execution and
//! exit-brain as processes, the real simulator on 16 random-walk symbols. Every intent reaches a
//! final outcome, and the exchange holds exactly what the streams say: each opened symbol one
//! order's quantity at most (a duplicate would exceed it), each refused symbol nothing (none lost).
//! The simulator's fault counters prove that every kind of fault actually fired.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use qt_e2e::{http_get, http_post, http_post_json};
use qt_events::{Decimal, Envelope, Event, OpenPosition, OrderKind, PositionSide};
use qt_exchange::Exchange;

#[test]
fn lost_responses_5xx_and_dropped_websockets_lose_no_order_and_duplicate_none() {
    let symbols: Vec<String> = (1..=16).map(|i| format!("F{i:02}USDT")).collect();
    let list = symbols.join(",");
    let mut stack = common::Stack::start_with(
        "faults",
        &[
            "--symbols",
            &list,
            "--warmup-candles",
            "50",
            "--no-rate-limits",
        ],
        &["execution", "exit-brain"],
        &[
            ("QT_EXECUTION__LIMITS__MAX_CONCURRENT_POSITIONS", "32"),
            ("QT_EXECUTION__LIMITS__MAX_GROSS_EXPOSURE", "100000"),
            ("QT_EXECUTION__POLL_INTERVAL", "1s"),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ex = stack.exchange();
    let clock = qt_events::clock::system();
    let mut wanted = HashMap::new();
    let envs: Vec<Envelope> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let price = rt.block_on(ex.mark_price(s)).unwrap().mark_price;
            let qty = (Decimal::from(60) / price).round_dp(2);
            wanted.insert(s.clone(), qty);
            Envelope::new(
                Event::OpenPosition(OpenPosition {
                    intent_id: format!("e2e-fault-{s}"),
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
            )
        })
        .collect();
    let faults =
        r#"{"errorRate":0.3,"loseResponseRate":0.3,"lostResponseMs":300,"wsDropAfterMs":1500}"#;
    let (status, body) = http_post_json(&stack.sim_addr, "/sim/faults", faults).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(http_post(&stack.sim_addr, "/sim/ws/drop").unwrap().0, 200);
    stack.publish_all(&envs);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut cleared = false;
    loop {
        let (opened, refused) = outcomes(&stack);
        if opened.len() + refused.len() >= symbols.len() {
            break;
        }
        if !cleared && Instant::now() + Duration::from_secs(40) < deadline {
            std::thread::sleep(Duration::from_millis(100));
        } else if !cleared {
            // Past 20 s of faults: let the system settle what is left.
            http_post_json(&stack.sim_addr, "/sim/faults", "{}").unwrap();
            cleared = true;
        }
        assert!(
            Instant::now() < deadline,
            "{} opened, {} refused of {}\n{}",
            opened.len(),
            refused.len(),
            symbols.len(),
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    http_post_json(&stack.sim_addr, "/sim/faults", "{}").unwrap();
    std::thread::sleep(Duration::from_millis(500));

    // The faults really fired: the simulator counts each one it injected.
    let (status, body) = http_get(&stack.sim_addr, "/sim/state").unwrap();
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    let fired = &state["faultCounts"];
    for fault in ["errors", "lostResponses", "wsDrops"] {
        assert!(
            fired[fault].as_u64().unwrap_or(0) > 0,
            "the simulator never injected {fault}: {fired}"
        );
    }

    let (opened, refused) = outcomes(&stack);
    let held: HashMap<String, Decimal> = rt
        .block_on(ex.positions(None))
        .unwrap()
        .into_iter()
        .filter(|p| !p.position_amt.is_zero())
        .map(|p| (p.symbol, p.position_amt.abs()))
        .collect();
    for s in &symbols {
        let on_exchange = held.get(s).copied().unwrap_or_default();
        if opened.contains_key(s) {
            // A market order may fill partly (the sim caps a fill at a share of the candle's
            // volume and fills the rest on later candles); a duplicate would exceed one order.
            assert!(
                on_exchange > Decimal::ZERO && on_exchange <= wanted[s],
                "{s}: the exchange holds {on_exchange}, one order is {}",
                wanted[s]
            );
        } else {
            assert!(refused.contains(s), "{s} has no outcome");
            assert_eq!(on_exchange, Decimal::ZERO, "{s}: refused but held");
        }
    }
    assert!(!opened.is_empty(), "faults must not refuse everything");
    stack.stop();
}

/// (quantity opened per symbol, symbols refused) on the streams.
fn outcomes(stack: &common::Stack) -> (HashMap<String, Decimal>, Vec<String>) {
    let opened = stack
        .stream("positions")
        .into_iter()
        .filter_map(|e| match e.event {
            Event::PositionOpened(p) => Some((p.symbol, p.quantity)),
            _ => None,
        })
        .collect();
    let refused = stack
        .stream("orders")
        .into_iter()
        .filter_map(|e| match e.event {
            Event::OrderRejected(r) if r.intent_id.starts_with("e2e-fault-") => Some(r.symbol),
            _ => None,
        })
        .collect();
    (opened, refused)
}
