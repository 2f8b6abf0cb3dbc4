//! Redis SIGKILLed mid-run (AOF with `appendfsync everysec`, as deploy/redis.conf) while the
//! paper stack trades and the market keeps moving, then restarted on its data — minus what it
//! had written since a moment before, as a crash of the machine loses the writes `everysec` had
//! not synced yet: the test cuts the AOF back to its size before the last position facts, so
//! the loss is certain. Nobody restarts a service: each becomes ready again by itself, trading
//! resumes (new order facts after the restart), execution sees that the `positions` stream lost
//! facts it had published — even when it publishes new ones after the restart before its next
//! reconciliation — and restates them, the positions the streams report come back in
//! line with the exchange, and every open position has its stop on the exchange.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use qt_events::Event;
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

    // Position facts written after `cut` are the ones the crash loses.
    let aof = incr_aof(stack.redis.data_dir());
    let cut = std::fs::metadata(&aof).unwrap().len();
    let facts = stack.stream("positions").len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.stream("positions").len() == facts {
        assert!(
            Instant::now() < deadline,
            "no new position fact\n{}",
            stack.logs()
        );
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
    }
    let before = stack.stream("positions").len();

    // The crash, with the market moving during the outage.
    stack.redis.kill();
    let f = std::fs::OpenOptions::new().write(true).open(&aof).unwrap();
    f.set_len(cut).unwrap();
    drop(f);
    for _ in 0..5 {
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
    }
    stack.redis.restart();
    let restarted_ms = qt_events::clock::system().now_ms();
    let after = stack.stream("positions").len();
    assert!(
        after < before,
        "the crash lost no position fact ({after} of {before})"
    );
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

    // Execution notices the loss: its next publish of a position fact, or its next
    // reconciliation, finds its last published fact gone, raises the alert and restates.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stack
        .stream("alerts")
        .iter()
        .any(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "stream_data_lost"))
    {
        assert!(
            Instant::now() < deadline,
            "execution did not notice the lost facts\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Market stops; within a few reconciliations the streams agree with the exchange.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exchange = common::exchange_positions(&rt, &ex);
        let streams = stack.stream_positions();
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

    // Every open position has its stop on the exchange (exit-brain protects a position whose
    // opening it learns from the restatement).
    common::assert_protected_within(&stack.sim_addr, Duration::from_secs(20), || stack.logs());
    stack.stop();
}

/// The AOF file Redis appends to (multi-part AOF: `appendonlydir/<name>.<n>.incr.aof`).
fn incr_aof(data_dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(data_dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .max()
        .expect("an incremental AOF file")
}
