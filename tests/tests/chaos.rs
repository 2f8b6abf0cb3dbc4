//! 200 entry intents (25 random-walk symbols × 8 adds, whose prices stand still) published in
//! bursts, while trading-bot trades three more symbols whose market the test moves, and
//! trading-bot, execution and exit-brain are SIGKILLed at random moments and restarted, several
//! times each. Afterwards:
//! - every intent — the test's and the bot's — has a final outcome (filled or refused);
//! - no intent made two orders: each still symbol's position on the exchange is exactly the sum
//!   of its filled intents (on the bot's symbols a second order would show as a position the
//!   database does not hold);
//! - once execution has taken the last intent, every open position has its stop resting on the
//!   exchange, or a market close working, within 5 s; and through the whole run, kills
//!   included, a watcher samples the simulator's book every 100 ms: no position goes without
//!   one for more than 5 s (see docs/arch/e2e.md for what it took);
//! - the positions the streams report agree with the exchange;
//! - execution's database agrees with the exchange: the same open positions, the same open
//!   orders and conditional orders, nothing left SENDING.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use qt_events::{Decimal, Envelope, Event, OpenPosition, OrderKind, PositionSide};
use qt_exchange::Exchange;
use qt_testkit::wait_for;
use rand::Rng;

const SYMBOLS: usize = 25;
const ADDS: usize = 8;
/// The symbols trading-bot trades; only their market moves.
const BOT_SYMBOLS: [&str; 3] = ["T01USDT", "T02USDT", "T03USDT"];

#[test]
fn services_sigkilled_at_random_during_200_intents_lose_none_duplicate_none_and_protect_every_position()
 {
    let symbols: Vec<String> = (1..=SYMBOLS).map(|i| format!("K{i:02}USDT")).collect();
    let bot_symbols: Vec<String> = BOT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect();
    let list = [symbols.clone(), bot_symbols.clone()].concat().join(",");
    let universe = format!("[{}]", bot_symbols.join(","));
    let mut stack = common::Stack::start_with(
        "chaos",
        &[
            "--symbols",
            &list,
            "--warmup-candles",
            "400",
            "--no-rate-limits",
        ],
        &["trading-bot", "execution", "exit-brain"],
        &[
            ("QT_TRADING_BOT__SYMBOLS", &universe),
            ("QT_TRADING_BOT__COOLDOWN_MINUTES", "0"),
            ("QT_EXECUTION__LIMITS__COOLDOWN_MINUTES", "0"),
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

    let watch = common::StopWatch::start(stack.sim_addr.clone());
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut kills: HashMap<&str, usize> = HashMap::new();
    let mut next_kill = Instant::now() + Duration::from_millis(rng.random_range(100..600));
    for burst in envs.chunks(10) {
        stack.publish_all(burst);
        stack.step_symbols(&bot_symbols);
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
            stack.step_symbols(&bot_symbols);
            let (name, _, child) = &mut stack.services[i];
            child.kill9();
            *kills.entry(name).or_default() += 1;
            std::thread::sleep(Duration::from_millis(rng.random_range(50..300)));
            child.start();
        }
    }
    assert!(
        kills.len() == 3 && kills.values().all(|n| *n >= 2),
        "kills: {kills:?}"
    );
    stack.wait_ready(60);

    // Every intent reaches a final outcome: the test's 200 and whatever the bot sent (its market
    // keeps moving meanwhile, so a partly filled market order completes).
    let deadline = Instant::now() + Duration::from_secs(180);
    let (filled, refused, bot_intents) = loop {
        let (filled, refused) = outcomes(&stack);
        let bot_intents = bot_intents(&stack);
        let done = intents
            .iter()
            .map(|(id, _, _)| id)
            .chain(&bot_intents)
            .filter(|id| filled.contains_key(*id) || refused.contains(*id))
            .count();
        if done == intents.len() + bot_intents.len() {
            eprintln!(
                "chaos: every intent had its outcome {:.1} s after the first burst",
                started.elapsed().as_secs_f64()
            );
            break (filled, refused, bot_intents);
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} intents have an outcome (kills {kills:?})\n{}",
            intents.len() + bot_intents.len(),
            stack.logs()
        );
        stack.step_symbols(&bot_symbols);
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        !bot_intents.is_empty(),
        "trading-bot sent no intent while its market moved\n{}",
        stack.logs()
    );

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
    let held = |rt: &tokio::runtime::Runtime| common::exchange_positions(rt, &ex);
    let mut still = held(&rt);
    still.retain(|s, _| !BOT_SYMBOLS.contains(&s.as_str()));
    assert_eq!(still, expected, "exchange positions vs filled intents");

    // Once execution has taken every intent, each open position has its stop on the exchange
    // within 5 s.
    let drained = Instant::now();
    wait_for(120, "execution to take every intent", || {
        let (lag, pending) = stack.group_backlog("intents", "execution");
        (lag == 0 && pending == 0).then_some(())
    });
    eprintln!(
        "chaos: execution's intent backlog drained {:.1} s after the last outcome",
        drained.elapsed().as_secs_f64()
    );
    common::assert_protected_within(&stack.sim_addr, Duration::from_secs(5), || {
        format!(
            "(lag, pending) of execution on intents: {:?}\n{}",
            stack.group_backlog("intents", "execution"),
            stack.logs()
        )
    });
    // And through the whole run, kills included: no position was without its stop (or a
    // market close working) for more than 5 s, as sampled every 100 ms.
    let stretches = watch.finish();
    let over: Vec<_> = stretches
        .iter()
        .filter(|b| b.lasted > Duration::from_secs(5))
        .collect();
    eprintln!(
        "chaos: {} unprotected stretches during the run, {} longer than 5 s; longest {:?}",
        stretches.len(),
        over.len(),
        &stretches[..stretches.len().min(3)]
    );
    assert!(
        over.is_empty(),
        "positions without a stop for more than 5 s during the run: {over:?}\n{}",
        stack.logs()
    );

    // The positions the streams report agree with the exchange (after reconciliation).
    let checks = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let streams = stack.stream_positions();
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

    eprintln!(
        "chaos: kills {kills:?}; {} test intents ({} filled), {} bot intents ({} filled), {} refused",
        intents.len(),
        intents
            .iter()
            .filter(|(id, _, _)| filled.contains_key(id))
            .count(),
        bot_intents.len(),
        bot_intents
            .iter()
            .filter(|id| filled.contains_key(*id))
            .count(),
        refused.len()
    );

    // Execution's database agrees with the exchange (after reconciliation).
    let db = rt.block_on(Records::open(&stack.db_path("execution")));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exchange = held(&rt);
        let orders: BTreeSet<String> = rt
            .block_on(ex.open_orders(None))
            .unwrap()
            .into_iter()
            .map(|o| o.client_order_id)
            .chain(
                rt.block_on(ex.open_algo_orders(None))
                    .unwrap()
                    .into_iter()
                    .map(|a| a.client_algo_id),
            )
            .collect();
        let (positions, live, triggered, sending) = rt.block_on(db.read());
        // A conditional order that fired works on as a plain order with the same client id;
        // the record says TRIGGERED and follows its fills.
        let orders: BTreeSet<String> = orders.difference(&triggered).cloned().collect();
        if positions == exchange && live == orders && sending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "database vs exchange:\npositions {positions:?}\n       vs {exchange:?}\n\
             open orders only in the database {:?}\nonly on the exchange {:?}\nleft SENDING {sending:?}",
            live.difference(&orders).collect::<Vec<_>>(),
            orders.difference(&live).collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "chaos: streams and database agreed with the exchange {:.1} s after the stops were checked",
        checks.elapsed().as_secs_f64()
    );
    let stopping = Instant::now();
    stack.stop();
    eprintln!(
        "chaos: stack stopped in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
}

/// Execution's SQLite file, read beside the running service.
struct Records(qt_store::AnyPool);

impl Records {
    async fn open(path: &std::path::Path) -> Self {
        qt_store::sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=ro", path.display());
        Self(qt_store::AnyPool::connect(&url).await.unwrap())
    }

    /// (open positions by symbol, client ids of live orders, of triggered conditional orders,
    /// of orders left SENDING).
    async fn read(
        &self,
    ) -> (
        BTreeMap<String, Decimal>,
        BTreeSet<String>,
        BTreeSet<String>,
        Vec<String>,
    ) {
        use qt_store::sqlx::Row;
        let positions = qt_store::sqlx::query(
            "SELECT symbol, quantity FROM exec_positions WHERE state = 'OPEN'",
        )
        .fetch_all(&self.0)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let q: String = r.get("quantity");
            (r.get::<String, _>("symbol"), q.parse::<Decimal>().unwrap())
        })
        .filter(|(_, q)| !q.is_zero())
        .collect();
        let rows = qt_store::sqlx::query(
            "SELECT client_order_id, state FROM exec_orders \
             WHERE state IN ('SENDING', 'ACKED', 'PARTIALLY_FILLED', 'TRIGGERED')",
        )
        .fetch_all(&self.0)
        .await
        .unwrap();
        let mut live = BTreeSet::new();
        let mut triggered = BTreeSet::new();
        let mut sending = Vec::new();
        for r in rows {
            let cid: String = r.get("client_order_id");
            match r.get::<String, _>("state").as_str() {
                "SENDING" => sending.push(cid),
                "TRIGGERED" => {
                    triggered.insert(cid);
                }
                _ => {
                    live.insert(cid);
                }
            }
        }
        (positions, live, triggered, sending)
    }
}

/// The ids of the entry intents trading-bot sent (an id is derived from symbol and candle, so a
/// restart that handled a candle again repeats the id and execution takes it once).
fn bot_intents(stack: &common::Stack) -> BTreeSet<String> {
    stack
        .stream("intents")
        .into_iter()
        .filter_map(|e| match e.event {
            Event::OpenPosition(o) if e.src == "trading-bot" => Some(o.intent_id),
            _ => None,
        })
        .collect()
}

/// (filled quantity per intent, refused intents) on `orders`.
fn outcomes(stack: &common::Stack) -> (HashMap<String, Decimal>, HashSet<String>) {
    let mut filled = HashMap::new();
    let mut refused = HashSet::new();
    for e in stack.stream("orders") {
        match e.event {
            Event::OrderFilled(f) => {
                filled.insert(f.intent_id, f.cumulative_qty);
            }
            Event::OrderRejected(r) => {
                refused.insert(r.intent_id);
            }
            _ => {}
        }
    }
    (filled, refused)
}
