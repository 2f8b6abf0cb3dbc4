//! The drawdown breaker in execution, against the real simulator with a real Redis and a real
//! SQLite file: portfolio snapshots raise the alerts at 50% and 80% of the limit and trip it,
//! entries are then refused `DRAWDOWN_BREAKER` (across a restart) while exits still go out,
//! and only an operator's `ResumeTrading` on the control stream lets entries through again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_bus::{Delivery, Handler};
use qt_events::{
    ClosePosition, Envelope, Event, PortfolioSnapshot, RejectReason, ResumeTrading, Severity,
    Stream,
};
use rust_decimal::Decimal;

fn delivery(stream: Stream, envelope: Envelope) -> Delivery {
    Delivery {
        stream,
        entry_id: "1-0".into(),
        envelope,
        deliveries: 1,
    }
}

fn snapshot(fx: &Fixture, equity: &str) -> Envelope {
    fx.bus.envelope(Event::PortfolioSnapshot(PortfolioSnapshot {
        ts: qt_events::clock::system().now_ms(),
        equity: dec(equity),
        wallet_balance: dec(equity),
        unrealized_pnl: Decimal::ZERO,
        realized_pnl_today: Decimal::ZERO,
        daily_pnl: Decimal::ZERO,
        gross_exposure: Decimal::ZERO,
        net_exposure: Decimal::ZERO,
        long_exposure: Decimal::ZERO,
        short_exposure: Decimal::ZERO,
        open_positions: 0,
    }))
}

/// The drawdown alerts published so far: (rule, severity), in order.
async fn drawdown_alerts(fx: &Fixture) -> Vec<(String, Severity)> {
    fx.events(Stream::Alerts)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::AlertRaised(a) if a.rule.starts_with("drawdown") => Some((a.rule, a.severity)),
            _ => None,
        })
        .collect()
}

fn refused_for(out: &[Envelope]) -> Option<RejectReason> {
    match &out.first()?.event {
        Event::OrderRejected(r) => Some(r.reason),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drawdown_breaker_stops_entries_until_an_operator_resumes_and_never_stops_exits() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mut portfolio = execution::PortfolioHandler(ex.clone());
    let control = execution::ControlHandler(ex.clone());
    let mark = fx.mark().await;
    let opened = ex
        .handle_intent(&open_intent(&fx.bus, "dd-before", "0.005", mark))
        .await
        .unwrap();
    assert!(
        matches!(opened[0].event, Event::OrderAccepted(_)),
        "{opened:?}"
    );

    // 10,000 is the peak; 4% down says nothing, 5% is half of the 10% limit, 8% is 80%.
    for e in ["10000", "9600"] {
        portfolio
            .handle(&delivery(Stream::Portfolio, snapshot(&fx, e)))
            .await
            .unwrap();
    }
    assert!(drawdown_alerts(&fx).await.is_empty());
    let half = snapshot(&fx, "9500");
    portfolio
        .handle(&delivery(Stream::Portfolio, half.clone()))
        .await
        .unwrap();
    // A redelivered snapshot raises nothing again.
    portfolio
        .handle(&delivery(Stream::Portfolio, half))
        .await
        .unwrap();
    for e in ["9400", "9200"] {
        portfolio
            .handle(&delivery(Stream::Portfolio, snapshot(&fx, e)))
            .await
            .unwrap();
    }
    assert_eq!(
        drawdown_alerts(&fx).await,
        vec![
            ("drawdown_half_limit".to_owned(), Severity::Warning),
            ("drawdown_near_limit".to_owned(), Severity::Warning),
        ]
    );
    let ok = ex
        .handle_intent(&open_intent(&fx.bus, "dd-at-80", "0.005", mark))
        .await
        .unwrap();
    assert!(
        matches!(ok[0].event, Event::OrderAccepted(_)),
        "80% still trades: {ok:?}"
    );
    let orders_before_trip = fx.all_orders().await.len();

    // 10% down: the breaker trips, with one critical alert carrying the figures.
    portfolio
        .handle(&delivery(Stream::Portfolio, snapshot(&fx, "9000")))
        .await
        .unwrap();
    let tripped = fx
        .wait_event(
            Stream::Alerts,
            "the trip's alert",
            |e| matches!(e, Event::AlertRaised(a) if a.rule == "drawdown_breaker_tripped"),
        )
        .await;
    let Event::AlertRaised(a) = &tripped.event else {
        unreachable!()
    };
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.service, "execution");
    assert_eq!(a.details["peak"], "10000");
    assert_eq!(a.details["equity"], "9000");
    assert!(a.message.contains("qtctl resume"), "{}", a.message);
    let halt = ex.book.lock().await.drawdown_halt.expect("tripped");
    assert_eq!((halt.peak, halt.equity), (dec("10000"), dec("9000")));

    // Entries are refused, even after the equity recovers and after a restart.
    let out = ex
        .handle_intent(&open_intent(&fx.bus, "dd-after", "0.005", mark))
        .await
        .unwrap();
    assert_eq!(
        refused_for(&out),
        Some(RejectReason::DrawdownBreaker),
        "{out:?}"
    );
    portfolio
        .handle(&delivery(Stream::Portfolio, snapshot(&fx, "10500")))
        .await
        .unwrap();
    drop(portfolio);
    drop(control);
    let ex = fx.execution(settings()).await;
    let mut control = execution::ControlHandler(ex.clone());
    let out = ex
        .handle_intent(&open_intent(&fx.bus, "dd-after-restart", "0.005", mark))
        .await
        .unwrap();
    assert_eq!(
        refused_for(&out),
        Some(RejectReason::DrawdownBreaker),
        "{out:?}"
    );
    assert_eq!(
        fx.all_orders().await.len(),
        orders_before_trip,
        "no entry reached the exchange"
    );

    // Exits always go out.
    let close = fx.bus.envelope(Event::ClosePosition(ClosePosition {
        intent_id: "dd-close".into(),
        symbol: SYMBOL.into(),
        reason: "manual".into(),
        position_side: None,
    }));
    let closed = ex.handle_intent(&close).await.unwrap();
    assert!(
        matches!(closed[0].event, Event::OrderAccepted(_)),
        "{closed:?}"
    );
    assert_eq!(fx.position_amt().await, Decimal::ZERO);

    // The operator resumes: the halt is cleared, the peak starts again at the current equity
    // (10,500), an alert says who and why, and entries pass again.
    let resume = fx.bus.envelope(Event::ResumeTrading(ResumeTrading {
        command_id: "cmd-resume".into(),
        reason: "reviewed the losses".into(),
        requested_by: "test".into(),
    }));
    control
        .handle(&delivery(Stream::Control, resume.clone()))
        .await
        .unwrap();
    {
        let book = ex.book.lock().await;
        assert_eq!(book.drawdown_halt, None);
        assert_eq!(book.equity_peak, Some(dec("10500")));
    }
    let resumed = fx
        .wait_event(
            Stream::Alerts,
            "the resume's alert",
            |e| matches!(e, Event::AlertRaised(a) if a.rule == "drawdown_breaker_resumed"),
        )
        .await;
    let Event::AlertRaised(a) = &resumed.event else {
        unreachable!()
    };
    assert!(a.message.contains("reviewed the losses") && a.message.contains("test"));
    assert_eq!(a.details["command_id"], "cmd-resume");
    let out = ex
        .handle_intent(&open_intent(&fx.bus, "dd-resumed", "0.005", mark))
        .await
        .unwrap();
    assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");

    // The resume is kept across a restart, and a redelivered command changes nothing.
    let ex = fx.execution(settings()).await;
    assert_eq!(ex.book.lock().await.drawdown_halt, None);
    let mut control = execution::ControlHandler(ex.clone());
    control
        .handle(&delivery(Stream::Control, resume))
        .await
        .unwrap();
    assert_eq!(ex.book.lock().await.equity_peak, Some(dec("10500")));
    let rules: Vec<String> = drawdown_alerts(&fx)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        rules,
        [
            "drawdown_half_limit",
            "drawdown_near_limit",
            "drawdown_breaker_tripped",
            "drawdown_breaker_resumed"
        ],
        "each alert once"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_without_a_trip_changes_nothing() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mut portfolio = execution::PortfolioHandler(ex.clone());
    let mut control = execution::ControlHandler(ex.clone());
    for e in ["10000", "9300"] {
        portfolio
            .handle(&delivery(Stream::Portfolio, snapshot(&fx, e)))
            .await
            .unwrap();
    }
    let before = ex.book.lock().await.clone();
    let resume = fx.bus.envelope(Event::ResumeTrading(ResumeTrading {
        command_id: "cmd-early".into(),
        reason: "just in case".into(),
        requested_by: "test".into(),
    }));
    control
        .handle(&delivery(Stream::Control, resume))
        .await
        .unwrap();
    let after = ex.book.lock().await.clone();
    assert_eq!(
        after.equity_peak,
        Some(dec("10000")),
        "the peak is not reset"
    );
    assert_eq!(after, before);
    let rules: Vec<String> = drawdown_alerts(&fx)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(rules, ["drawdown_half_limit"]);
    fx.stop().await;
}
