//! Redis SIGKILLed mid-run (AOF with `appendfsync everysec`, as deploy/redis.conf: up to a
//! second of writes may be lost) while the paper stack trades and the market keeps moving, then
//! restarted on its data. Nobody restarts a service: each becomes ready again by itself, trading
//! resumes (new order facts after the restart), and reconciliation brings the positions the
//! streams report back in line with the exchange.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use qt_events::{Decimal, Event};
use qt_exchange::Exchange;
use qt_testkit::Fsync;

#[test]
fn after_a_redis_sigkill_the_system_recovers_by_itself_and_reconciliation_heals_the_positions() {
    let args = common::Stack::paper_sim_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut stack = common::Stack::start_opts(
        "rcrash",
        &args,
        &["trading-bot", "execution", "exit-brain"],
        &[("QT_EXECUTION__RECONCILE_INTERVAL", "2s")],
        Fsync::EverySec,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ex = stack.exchange();

    let deadline = Instant::now() + Duration::from_secs(60);
    while !stack
        .stream("positions")
        .iter()
        .any(|e| matches!(e.event, Event::PositionOpened(_)))
    {
        assert!(
            Instant::now() < deadline,
            "nothing opened\n{}",
            stack.logs()
        );
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
    }

    // The crash, with the market moving during the outage.
    stack.redis.kill();
    for _ in 0..5 {
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
    }
    stack.redis.restart();
    let restarted_ms = qt_events::clock::system().now_ms();
    stack.wait_ready(60);

    // Trading resumes: new order facts published after the restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fresh = stack
            .stream("orders")
            .iter()
            .filter(|e| e.ts > restarted_ms)
            .count();
        if fresh > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no order fact after the restart\n{}",
            stack.logs()
        );
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
    }

    // Market stops; within a few reconciliations the streams agree with the exchange.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exchange: BTreeMap<String, Decimal> = rt
            .block_on(ex.positions(None))
            .unwrap()
            .into_iter()
            .filter(|p| !p.position_amt.is_zero())
            .map(|p| (p.symbol, p.position_amt.abs()))
            .collect();
        let streams = open_positions(&stack);
        if exchange == streams {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "exchange {exchange:?} vs streams {streams:?}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stack.stop();
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
