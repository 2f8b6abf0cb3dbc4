//! exit-brain's reactions, in process, over its real SQLite store: the plan and its protect
//! intent on open, break-even after the first leg, trailing from marks, resize on a partial
//! entry, the watchdog, learning on close, replay of a redelivered event and the restart check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use exit_brain::brain::STOP_LEG;
use exit_brain::sql::SqlStore;
use exit_brain::store::PlanStore;
use exit_brain::{Brain, BrainConfig, ExchangeView};
use qt_events::clock::{ManualClock, SharedClock};
use qt_events::ids::client_order_id;
use qt_events::{
    Envelope, Event, OrderKind, OrderRejected, PositionSide, ProtectPosition, RejectReason,
};
use qt_exits::ExitConfig;
use qt_risk::SymbolFilters;
use rust_decimal_macros::dec;

const T0: i64 = 1_700_000_000_000;

/// Handles an event as if it came in its own stream entry.
trait HandleEnv {
    async fn handle_env(
        &mut self,
        e: &qt_events::Envelope,
    ) -> Result<Vec<qt_events::Envelope>, exit_brain::BrainError>;
}

impl HandleEnv for Brain<SqlStore> {
    async fn handle_env(
        &mut self,
        e: &qt_events::Envelope,
    ) -> Result<Vec<qt_events::Envelope>, exit_brain::BrainError> {
        let source = format!("test/{}", e.id);
        self.handle(e, &source).await
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    url: String,
    clock: Arc<ManualClock>,
}

impl Fx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("eb.sqlite").display());
        Self {
            _dir: dir,
            url,
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    async fn brain(&self) -> Brain<SqlStore> {
        self.brain_with(ExitConfig::default(), false).await
    }

    /// The brain of an account in hedge mode (`hedge`) or one-way mode.
    async fn brain_in(&self, hedge: bool) -> Brain<SqlStore> {
        self.brain_with(ExitConfig::default(), hedge).await
    }

    async fn brain_with(&self, exits: ExitConfig, hedge: bool) -> Brain<SqlStore> {
        let store = SqlStore::connect(&self.url, T0).await.unwrap();
        let clock: SharedClock = self.clock.clone();
        let cfg = BrainConfig {
            exits,
            hedge,
            watchdog_ms: 5_000,
            volatility_interval: "5m".into(),
            volatility_window: 288,
        };
        let mut b = Brain::load(store, clock, cfg).await.unwrap();
        b.set_filters(
            "BTCUSDT",
            SymbolFilters {
                tick_size: dec!(0.1),
                step_size: dec!(0.001),
                min_qty: dec!(0.001),
                max_qty: dec!(1000),
                min_notional: dec!(100),
                ..SymbolFilters::NONE
            },
        );
        b
    }
}

/// Opens `p1` (1 BTCUSDT at 100, at `T0`) and returns the id of the protect intent it gets.
async fn open_p1(b: &mut Brain<SqlStore>, clock: &dyn qt_events::clock::Clock) -> String {
    let out = b
        .handle_env(&env(
            opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
            "o1",
            clock,
        ))
        .await
        .unwrap();
    protect_of(&out).unwrap().intent_id.clone()
}

#[tokio::test]
async fn an_opened_position_is_protected_at_once_with_a_stop_and_a_30_30_40_ladder() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let e = env(
        opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
        "o1",
        fx.clock.as_ref(),
    );
    let out = b.handle(&e, "1-0").await.unwrap();
    assert_eq!(out.len(), 1);
    let p = protect_of(&out).unwrap();
    assert_eq!(out[0].id, p.intent_id, "the envelope id is the intent id");
    assert_eq!(
        out[0].corr, e.corr,
        "the intent continues the event's chain"
    );
    assert_eq!(p.stop.as_ref().unwrap().trigger_price, dec!(98));
    let legs: Vec<_> = p
        .take_profits
        .iter()
        .map(|l| (l.leg.as_str(), l.trigger_price, l.quantity))
        .collect();
    // No candle seen: the calm ladder, +1.95 / +3.25 / +5.2%.
    assert_eq!(
        legs,
        vec![
            ("tp1", dec!(101.9), dec!(0.3)),
            ("tp2", dec!(103.2), dec!(0.3)),
            ("tp3", dec!(105.2), dec!(0.4)),
        ]
    );
    let t = b.plan("p1").unwrap();
    assert_eq!((t.revision, t.stop_confirmed), (1, false));
}

#[tokio::test]
async fn the_first_leg_filling_moves_the_stop_to_break_even() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let intent = open_p1(&mut b, clock).await;
    let stop_coid = client_order_id(&intent, STOP_LEG);
    b.handle_env(&env(
        accepted(&intent, &stop_coid, "BTCUSDT", OrderKind::StopMarket),
        "a1",
        clock,
    ))
    .await
    .unwrap();
    assert!(b.plan("p1").unwrap().stop_confirmed);
    let tp1 = client_order_id(&intent, "tp1");
    let out = b
        .handle_env(&env(
            tp_filled(&intent, &tp1, "BTCUSDT", dec!(0.3), dec!(101.9)),
            "f1",
            clock,
        ))
        .await
        .unwrap();
    let p = protect_of(&out).expect("a stop move");
    assert_eq!(p.stop.as_ref().unwrap().trigger_price, dec!(100));
    assert!(p.take_profits.is_empty(), "the resting legs are left alone");
    assert_ne!(p.intent_id, intent);
    // A fill of an order that is not one of its legs changes nothing.
    let out = b
        .handle_env(&env(
            tp_filled("other", "qt-other", "BTCUSDT", dec!(0.3), dec!(101.9)),
            "f2",
            clock,
        ))
        .await
        .unwrap();
    assert!(out.is_empty());
}

#[tokio::test]
async fn marks_past_the_activation_trail_the_stop_and_only_upward() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    b.handle_env(&env(
        opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
        "o1",
        clock,
    ))
    .await
    .unwrap();
    // Under the 3% activation: nothing.
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(102), T0), "m1", clock))
        .await
        .unwrap();
    assert!(out.is_empty());
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(104), T0), "m2", clock))
        .await
        .unwrap();
    // best 104, callback 1% → 102.96 floored to the tick.
    assert_eq!(
        protect_of(&out)
            .unwrap()
            .stop
            .as_ref()
            .unwrap()
            .trigger_price,
        dec!(102.9)
    );
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(103), T0), "m3", clock))
        .await
        .unwrap();
    assert!(out.is_empty(), "a falling mark never loosens the stop");
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(106), T0), "m4", clock))
        .await
        .unwrap();
    assert_eq!(
        protect_of(&out)
            .unwrap()
            .stop
            .as_ref()
            .unwrap()
            .trigger_price,
        dec!(104.9)
    );
    assert_eq!(b.plan("p1").unwrap().revision, 3);
}

#[tokio::test]
async fn a_partial_entry_fill_resizes_the_legs_to_what_is_held() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let out = b
        .handle_env(&env(
            opened("p1", "BTCUSDT", dec!(0.4), dec!(100), T0),
            "o1",
            clock,
        ))
        .await
        .unwrap();
    let q: Vec<_> = protect_of(&out)
        .unwrap()
        .take_profits
        .iter()
        .map(|l| l.quantity)
        .collect();
    assert_eq!(q, vec![dec!(0.12), dec!(0.12), dec!(0.16)]);
    let out = b
        .handle_env(&env(
            changed("p1", "BTCUSDT", dec!(1), dec!(100), T0),
            "c1",
            clock,
        ))
        .await
        .unwrap();
    let q: Vec<_> = protect_of(&out)
        .unwrap()
        .take_profits
        .iter()
        .map(|l| l.quantity)
        .collect();
    assert_eq!(q, vec![dec!(0.3), dec!(0.3), dec!(0.4)]);
    // A reduction (a leg or the stop filled) sends nothing.
    let out = b
        .handle_env(&env(
            changed("p1", "BTCUSDT", dec!(0.7), dec!(100), T0),
            "c2",
            clock,
        ))
        .await
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(b.plan("p1").unwrap().held, dec!(0.7));
}

#[tokio::test]
async fn the_watchdog_closes_a_position_whose_stop_is_not_confirmed_in_time() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    b.handle_env(&env(
        opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
        "o1",
        clock,
    ))
    .await
    .unwrap();
    let out = b
        .handle_env(&env(
            opened("p2", "ETHUSDT", dec!(1), dec!(2000), T0),
            "o2",
            clock,
        ))
        .await
        .unwrap();
    let intent2 = protect_of(&out).unwrap().intent_id.clone();
    b.handle_env(&env(
        accepted(
            &intent2,
            &client_order_id(&intent2, STOP_LEG),
            "ETHUSDT",
            OrderKind::StopMarket,
        ),
        "a2",
        clock,
    ))
    .await
    .unwrap();
    assert!(b.watchdog(T0 + 4_999).outputs.is_empty());
    let c = b.watchdog(T0 + 5_000);
    let closes: Vec<_> = c
        .outputs
        .iter()
        .filter_map(|e| match &e.event {
            Event::ClosePosition(c) => Some(c.symbol.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec!["BTCUSDT".to_owned()],
        "only the unprotected one"
    );
    assert!(
        c.outputs
            .iter()
            .any(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "stop_not_confirmed"))
    );
    b.apply(c).await.unwrap();
    assert!(b.watchdog(T0 + 60_000).outputs.is_empty(), "it fires once");
}

fn refused(intent: &str, leg: &str, reason: RejectReason, code: Option<i64>) -> Event {
    Event::OrderRejected(OrderRejected {
        intent_id: intent.to_owned(),
        client_order_id: Some(client_order_id(intent, leg)),
        symbol: "BTCUSDT".into(),
        reason,
        message: "refused".into(),
        exchange_code: code,
        until_ms: None,
    })
}

fn closes(out: &[Envelope], why: &str) -> bool {
    out.iter()
        .any(|e| matches!(&e.event, Event::ClosePosition(c) if c.reason == why))
}

#[tokio::test]
async fn a_refused_first_stop_closes_the_position_at_once() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let intent = open_p1(&mut b, clock).await;
    let rej = refused(
        &intent,
        STOP_LEG,
        RejectReason::MarginInsufficient,
        Some(-2019),
    );
    let out = b.handle_env(&env(rej, "r1", clock)).await.unwrap();
    assert!(closes(&out, "stop_rejected"), "{out:?}");
}

#[tokio::test]
async fn a_stop_the_price_is_through_is_closed_by_execution_and_only_alerted_here() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let intent = open_p1(&mut b, clock).await;
    let rej = refused(
        &intent,
        STOP_LEG,
        RejectReason::WouldImmediatelyTrigger,
        Some(-2021),
    );
    let out = b.handle_env(&env(rej, "r1", clock)).await.unwrap();
    assert!(
        !out.iter()
            .any(|e| matches!(e.event, Event::ClosePosition(_))),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "stop_rejected"))
    );
    // Execution's close refused because the position is already flat: nothing to do.
    let flat = refused(
        &intent,
        ProtectPosition::STOP_CLOSE_LEG,
        RejectReason::NoPosition,
        None,
    );
    let out = b.handle_env(&env(flat, "r2", clock)).await.unwrap();
    assert!(out.is_empty(), "{out:?}");
    // Refused for another reason: exit-brain asks for a close of its own.
    let failed = refused(
        &intent,
        ProtectPosition::STOP_CLOSE_LEG,
        RejectReason::ExchangeError,
        Some(-1000),
    );
    let out = b.handle_env(&env(failed, "r3", clock)).await.unwrap();
    assert!(closes(&out, "stop_close_rejected"), "{out:?}");
}

#[tokio::test]
async fn a_leg_superseded_by_a_later_protect_intent_is_no_refusal() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let intent = open_p1(&mut b, clock).await;
    for (i, leg) in [STOP_LEG, "tp1"].into_iter().enumerate() {
        let rej = refused(&intent, leg, RejectReason::Superseded, None);
        let out = b
            .handle_env(&env(rej, &format!("s{i}"), clock))
            .await
            .unwrap();
        assert!(out.is_empty(), "no close, no alert: {out:?}");
    }
    assert!(!b.plan("p1").unwrap().watchdog_fired);
}

#[tokio::test]
async fn a_close_records_the_outcome_and_persists_the_learned_profile() {
    let fx = Fx::new();
    {
        let mut b = fx.brain().await;
        let clock = fx.clock.as_ref();
        b.handle_env(&env(
            opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
            "o1",
            clock,
        ))
        .await
        .unwrap();
        // The trade ran to +8%, well past the last leg (+5.2%): the ladder should widen.
        b.handle_env(&env(mark("BTCUSDT", dec!(108), T0), "m1", clock))
            .await
            .unwrap();
        let out = b
            .handle_env(&env(
                closed(
                    "p1",
                    "BTCUSDT",
                    dec!(1),
                    dec!(100),
                    dec!(107),
                    T0 + 1,
                    "trailing",
                ),
                "x1",
                clock,
            ))
            .await
            .unwrap();
        assert!(
            out.iter().all(|e| matches!(e.event, Event::CancelOrder(_))),
            "only cancels of what may rest"
        );
        assert!(b.plan("p1").is_none());
    }
    // A restart reads the profile and the outcome back from the database.
    let mut b = fx.brain().await;
    let profile = b.profile("BTCUSDT");
    assert_eq!(profile.trades, 1);
    assert!(profile.tp_mult > dec!(1), "{profile:?}");
    let outcomes = b.store().outcomes("BTCUSDT").await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].net_pnl, dec!(7));
    assert_eq!(outcomes[0].profile_after, profile);
    // The next plan of the symbol uses it: its first target is further than +1.95%.
    let out = b
        .handle_env(&env(
            opened("p2", "BTCUSDT", dec!(1), dec!(100), T0),
            "o2",
            fx.clock.as_ref(),
        ))
        .await
        .unwrap();
    assert!(protect_of(&out).unwrap().take_profits[0].trigger_price > dec!(101.9));
}

#[tokio::test]
async fn a_redelivered_event_gets_the_same_intents_back_even_after_a_restart() {
    let fx = Fx::new();
    let e = env(
        opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
        "o1",
        fx.clock.as_ref(),
    );
    let m = env(mark("BTCUSDT", dec!(104), T0), "m1", fx.clock.as_ref());
    let (first, first_mark) = {
        let mut b = fx.brain().await;
        let a = b.handle(&e, "1-0").await.unwrap();
        let again = b.handle(&e, "1-0").await.unwrap();
        assert_eq!(a, again, "the same envelopes, ids included");
        let dup = b.handle(&e, "9-0").await.unwrap();
        assert!(
            dup.is_empty(),
            "the same event in another entry is a duplicate"
        );
        let mm = b.handle(&m, "2-0").await.unwrap();
        assert_eq!(b.plan("p1").unwrap().revision, 2);
        (a, mm)
    };
    let mut b = fx.brain().await;
    assert_eq!(b.plan("p1").unwrap().revision, 2, "the plan survived");
    assert_eq!(b.handle(&e, "1-0").await.unwrap(), first);
    assert_eq!(b.handle(&m, "2-0").await.unwrap(), first_mark);
    assert_eq!(b.plan("p1").unwrap().revision, 2, "nothing was done twice");
}

#[tokio::test]
async fn the_restart_check_reprotects_a_bare_position_confirms_a_stopped_one_and_flags_a_gone_one()
{
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let mut intents = Vec::new();
    for (pos, sym) in [("p1", "BTCUSDT"), ("p2", "ETHUSDT"), ("p3", "SOLUSDT")] {
        let out = b
            .handle_env(&env(opened(pos, sym, dec!(1), dec!(100), T0), pos, clock))
            .await
            .unwrap();
        intents.push(protect_of(&out).unwrap().intent_id.clone());
    }
    let mut view = ExchangeView::default();
    view.positions.insert(("BTCUSDT".into(), None), dec!(1));
    view.positions.insert(("ETHUSDT".into(), None), dec!(1));
    view.open_algo_ids
        .push(client_order_id(&intents[1], STOP_LEG));
    fx.clock.advance(10_000);
    let c = b.check_against(&view);
    let protects: Vec<_> = c
        .outputs
        .iter()
        .filter_map(|e| match &e.event {
            Event::ProtectPosition(p) => Some(p.symbol.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(protects, vec!["BTCUSDT".to_owned()]);
    assert!(c.outputs.iter().any(|e| matches!(&e.event, Event::AlertRaised(a) if a.rule == "plan_without_position" && a.key == "SOLUSDT")));
    b.apply(c).await.unwrap();
    assert!(b.plan("p2").unwrap().stop_confirmed);
    assert_eq!(b.plan("p1").unwrap().revision, 2);
    // The watchdog now times the new protect from the check, not from the open.
    assert!(
        b.watchdog(T0 + 10_000 + 4_999)
            .outputs
            .iter()
            .all(|e| e.sym.as_deref() != Some("BTCUSDT"))
    );
}

#[tokio::test]
async fn a_volatile_symbol_gets_wider_targets_than_a_calm_one() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    for i in 0..60_i64 {
        for (sym, swing) in [("CALMUSDT", 1), ("WILDUSDT", 60)] {
            let p = qt_events::Decimal::new(10_000 + swing * (i % 2), 2);
            let c = Event::CandleClosed(qt_events::CandleClosed {
                symbol: sym.into(),
                interval: "5m".into(),
                open_time: i * 300_000,
                close_time: i * 300_000 + 299_999,
                open: p,
                high: p,
                low: p,
                close: p,
                volume: dec!(1),
                quote_volume: dec!(0),
                trades: 1,
            });
            b.handle_env(&env(c, &format!("c{sym}{i}"), clock))
                .await
                .unwrap();
        }
    }
    let tp1 = |out: &[qt_events::Envelope]| protect_of(out).unwrap().take_profits[0].trigger_price;
    let calm = b
        .handle_env(&env(
            opened("p1", "CALMUSDT", dec!(1), dec!(100), T0),
            "o1",
            clock,
        ))
        .await
        .unwrap();
    let wild = b
        .handle_env(&env(
            opened("p2", "WILDUSDT", dec!(1), dec!(100), T0),
            "o2",
            clock,
        ))
        .await
        .unwrap();
    // Calm: +1.95%; volatile (daily vol far above 5%): +3%.
    assert_eq!(tp1(&calm), dec!(101.95));
    assert_eq!(tp1(&wild), dec!(103));
}

#[tokio::test]
async fn the_time_stop_closes_what_is_left_once() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    b.handle_env(&env(
        opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
        "o1",
        clock,
    ))
    .await
    .unwrap();
    fx.clock.set(T0 + 720 * 60_000 - 1);
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(100.5), T0), "m1", clock))
        .await
        .unwrap();
    assert!(out.is_empty());
    fx.clock.set(T0 + 720 * 60_000);
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(100.4), T0), "m2", clock))
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [e] if matches!(&e.event, Event::ClosePosition(c) if c.reason == "time_stop"))
    );
    // The close names the plan's side: execution never closes another position with it.
    assert!(
        matches!(&out[0].event, Event::ClosePosition(c) if c.position_side == Some(PositionSide::Long))
    );
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(100.3), T0), "m3", clock))
        .await
        .unwrap();
    assert!(out.is_empty());
}

fn signal(symbol: &str, action: qt_events::SignalAction) -> Event {
    Event::SignalGenerated(qt_events::SignalGenerated {
        symbol: symbol.into(),
        action,
        confidence: 1.0,
        model: "trend".into(),
        model_version: "trend-1".into(),
        candle_open_time: T0,
        features: Default::default(),
        expected_return: None,
    })
}

#[tokio::test]
async fn a_plan_that_closes_on_the_opposite_signal_closes_once_on_it() {
    use qt_events::SignalAction::{Buy, Hold, Sell};
    let exits = ExitConfig {
        low_vol_targets_pct: vec![],
        high_vol_targets_pct: vec![],
        leg_fractions: vec![],
        trailing_activation_pct: None,
        chandelier_vol_mult: Some(dec!(4.8)),
        close_on_flip: true,
        ..ExitConfig::default()
    };
    let fx = Fx::new();
    let mut b = fx.brain_with(exits, false).await;
    let clock = fx.clock.as_ref();
    let out = b
        .handle_env(&env(
            opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
            "o1",
            clock,
        ))
        .await
        .unwrap();
    // Protected by its stop alone: no take-profit.
    assert!(
        matches!(&out[..], [e] if matches!(&e.event, Event::ProtectPosition(p) if p.take_profits.is_empty() && p.stop.is_some()))
    );
    for (i, a) in [Hold, Buy].into_iter().enumerate() {
        let out = b
            .handle_env(&env(signal("BTCUSDT", a), &format!("s{i}"), clock))
            .await
            .unwrap();
        assert!(out.is_empty(), "{a:?}: {out:?}");
    }
    // Another symbol's SELL is not this position's.
    let out = b
        .handle_env(&env(signal("ETHUSDT", Sell), "s2", clock))
        .await
        .unwrap();
    assert!(out.is_empty());
    let out = b
        .handle_env(&env(signal("BTCUSDT", Sell), "s3", clock))
        .await
        .unwrap();
    assert!(closes(&out, "signal_flip"), "{out:?}");
    let out = b
        .handle_env(&env(signal("BTCUSDT", Sell), "s4", clock))
        .await
        .unwrap();
    assert!(out.is_empty(), "asked once: {out:?}");
    // After a restart the plan remembers it asked.
    let mut b = fx.brain().await;
    let out = b
        .handle_env(&env(signal("BTCUSDT", Sell), "s5", clock))
        .await
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
}

#[tokio::test]
async fn the_default_plan_ignores_the_opposite_signal() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    open_p1(&mut b, clock).await;
    let out = b
        .handle_env(&env(
            signal("BTCUSDT", qt_events::SignalAction::Sell),
            "s1",
            clock,
        ))
        .await
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
}

static OTHER: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations/other");

#[tokio::test]
async fn it_shares_a_database_with_another_services_migrations() {
    let fx = Fx::new();
    // Another service migrated the same file first, with its own version 1.
    let other = qt_store::Store::connect(
        &fx.url,
        qt_store::Migrations {
            sqlite: &OTHER,
            postgres: &OTHER,
        },
    )
    .await
    .unwrap();
    other.close().await;
    let mut b = fx.brain().await;
    let out = b
        .handle_env(&env(
            opened("p1", "BTCUSDT", dec!(1), dec!(100), T0),
            "o1",
            fx.clock.as_ref(),
        ))
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    // And the other way round: the other service still starts after exit-brain migrated.
    assert!(
        qt_store::Store::connect(
            &fx.url,
            qt_store::Migrations {
                sqlite: &OTHER,
                postgres: &OTHER,
            },
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn a_short_position_gets_its_stop_above_and_its_legs_below_the_entry() {
    let fx = Fx::new();
    let mut b = fx.brain().await;
    let clock = fx.clock.as_ref();
    let open = Event::PositionOpened(qt_events::PositionOpened {
        position_id: "s1".into(),
        symbol: "BTCUSDT".into(),
        side: qt_events::PositionSide::Short,
        quantity: dec!(1),
        entry_price: dec!(100),
        leverage: 5,
        intent_id: "open-s1".into(),
        opened_at: T0,
        signal: None,
    });
    let out = b.handle_env(&env(open, "o1", clock)).await.unwrap();
    let p = protect_of(&out).unwrap();
    assert_eq!(p.position_side, qt_events::PositionSide::Short);
    assert_eq!(p.stop.as_ref().unwrap().trigger_price, dec!(102));
    let targets: Vec<_> = p.take_profits.iter().map(|l| l.trigger_price).collect();
    assert_eq!(targets, vec![dec!(98.1), dec!(96.8), dec!(94.8)]);
    let intent = p.intent_id.clone();
    let out = b
        .handle_env(&env(
            tp_filled(
                &intent,
                &client_order_id(&intent, "tp1"),
                "BTCUSDT",
                dec!(0.3),
                dec!(98.05),
            ),
            "f1",
            clock,
        ))
        .await
        .unwrap();
    assert_eq!(
        protect_of(&out)
            .unwrap()
            .stop
            .as_ref()
            .unwrap()
            .trigger_price,
        dec!(100)
    );
    // A falling mark past the activation (−3%) trails the stop down, never up.
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(96), T0), "m1", clock))
        .await
        .unwrap();
    assert_eq!(
        protect_of(&out)
            .unwrap()
            .stop
            .as_ref()
            .unwrap()
            .trigger_price,
        dec!(97)
    );
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(97.5), T0), "m2", clock))
        .await
        .unwrap();
    assert!(out.is_empty());
}

/// A position of `side` (1 BTCUSDT at 100, at `T0`).
fn opened_on(pos: &str, side: PositionSide) -> Event {
    Event::PositionOpened(qt_events::PositionOpened {
        position_id: pos.into(),
        intent_id: format!("open-{pos}"),
        ..qt_testkit::build::opened("BTCUSDT", side, dec!(1), dec!(100), T0)
    })
}

/// The protect intents among `out`, by side.
fn protects(out: &[Envelope]) -> Vec<(PositionSide, String)> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::ProtectPosition(p) => Some((p.position_side, p.intent_id.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn in_hedge_mode_a_long_and_a_short_of_one_symbol_keep_their_own_plans() {
    let fx = Fx::new();
    let mut b = fx.brain_in(true).await;
    let clock = fx.clock.as_ref();
    let out = b
        .handle_env(&env(opened_on("L", PositionSide::Long), "o1", clock))
        .await
        .unwrap();
    let long_stop = protect_of(&out)
        .unwrap()
        .stop
        .clone()
        .unwrap()
        .trigger_price;
    let out = b
        .handle_env(&env(opened_on("S", PositionSide::Short), "o2", clock))
        .await
        .unwrap();
    // Each side its own plan and its own closePosition stop: below the long, above the short.
    let p = protect_of(&out).unwrap();
    assert_eq!(p.position_side, PositionSide::Short);
    assert_eq!(p.stop.as_ref().unwrap().trigger_price, dec!(102));
    assert_eq!(long_stop, dec!(98));
    assert!(
        b.plan("L").is_some(),
        "the short did not replace the long's plan"
    );
    assert!(b.plan("S").is_some());

    // A mark past both activations moves only the plans it concerns: a fall trails the short.
    let out = b
        .handle_env(&env(mark("BTCUSDT", dec!(96), T0), "m1", clock))
        .await
        .unwrap();
    let moved = protects(&out);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].0, PositionSide::Short);

    // The long's stop fills: its plan ends, the short's plan and stop are left alone.
    let out = b
        .handle_env(&env(
            Event::PositionClosed(qt_events::PositionClosed {
                position_id: "L".into(),
                ..qt_testkit::build::closed(
                    &qt_testkit::build::opened(
                        "BTCUSDT",
                        PositionSide::Long,
                        dec!(1),
                        dec!(100),
                        T0,
                    ),
                    dec!(98),
                    dec!(0),
                    T0 + 1,
                    "stop",
                )
            }),
            "c1",
            clock,
        ))
        .await
        .unwrap();
    assert!(b.plan("L").is_none());
    let short = b.plan("S").expect("the short keeps its plan");
    let short_orders: Vec<String> = short
        .stop_intents
        .iter()
        .flat_map(|i| [STOP_LEG, "tp1", "tp2", "tp3", "trailing"].map(|l| client_order_id(i, l)))
        .chain(short.tp_orders.keys().cloned())
        .collect();
    assert!(
        out.iter().all(|e| match &e.event {
            Event::CancelOrder(c) => !short_orders.contains(&c.client_order_id),
            Event::ProtectPosition(_) | Event::ClosePosition(_) => false,
            _ => true,
        }),
        "nothing touches the short: {out:?}"
    );

    // After a restart, the exchange holds both sides; only the short's stop rests, so only
    // the short is protected again — by its own side.
    let mut b = fx.brain_in(true).await;
    assert!(b.plan("S").is_some());
    let mut view = ExchangeView::default();
    view.positions
        .insert(("BTCUSDT".into(), Some(PositionSide::Short)), dec!(-1));
    view.slots_with_stop
        .push(("BTCUSDT".into(), Some(PositionSide::Short)));
    let c = b.check_against(&view);
    assert!(protects(&c.outputs).is_empty(), "{:?}", c.outputs);
    b.apply(c).await.unwrap();
    assert!(b.plan("S").unwrap().stop_confirmed);
}

#[tokio::test]
async fn in_one_way_mode_a_position_of_the_other_side_replaces_the_symbols_plan() {
    let fx = Fx::new();
    let mut b = fx.brain_in(false).await;
    let clock = fx.clock.as_ref();
    b.handle_env(&env(opened_on("L", PositionSide::Long), "o1", clock))
        .await
        .unwrap();
    b.handle_env(&env(opened_on("S", PositionSide::Short), "o2", clock))
        .await
        .unwrap();
    assert!(
        b.plan("L").is_none(),
        "one position per symbol: the long is gone"
    );
    assert!(b.plan("S").is_some());
    // The exchange's one position (positionSide BOTH) and its stop meet the plan.
    let mut view = ExchangeView::default();
    view.positions.insert(("BTCUSDT".into(), None), dec!(-1));
    view.slots_with_stop.push(("BTCUSDT".into(), None));
    let c = b.check_against(&view);
    assert!(protects(&c.outputs).is_empty(), "{:?}", c.outputs);
}
