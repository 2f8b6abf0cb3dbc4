//! The trading bot against a real Redis and the real simulator, stepped candle by candle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

use common::*;
use qt_events::{
    Decimal, Event, ModelArtifactRef, ModelDeployed, OrderRejected, PositionClosed, PositionOpened,
    PositionSide, RejectReason, SetKillSwitch, SignalAction, Stream,
};
use trading_bot::decisions::{candle_event_id, intent_id};

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_candles_become_candle_closed_once_each_with_a_signal_even_across_a_stream_drop() {
    let f = Fixture::start(|_, _| {}).await;
    // Warm-up candles feed the features; they are history, not published.
    assert!(f.candles().await.is_empty());
    for n in 1..=3 {
        f.step(1).await;
        f.wait_signals(n).await;
    }
    // The stream drops; two candles close while it is down (the bot reconnects after 1.5 s and
    // fetches them over REST), then one more arrives live.
    f.sim("/sim/ws/drop").await;
    // Let the simulator's socket tasks act on the drop before the market moves.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    f.step(2).await;
    f.wait_signals(5).await;
    f.step(1).await;
    let signals = f.wait_signals(6).await;
    assert_eq!(f.stats.connects.load(Ordering::Relaxed), 2, "one reconnect");
    assert_eq!(f.stats.candles_from_rest.load(Ordering::Relaxed), 2);
    assert_eq!(f.stats.candles_live.load(Ordering::Relaxed), 4);

    let market = f.read(Stream::Market).await;
    let candles: Vec<_> = market
        .iter()
        .filter_map(|e| match &e.event {
            Event::CandleClosed(c) => Some((e.id.clone(), c.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(candles.len(), 6, "{candles:#?}");
    for w in candles.windows(2) {
        assert_eq!(
            w[1].1.open_time - w[0].1.open_time,
            FIVE_MIN,
            "a candle skipped or doubled"
        );
    }
    for (id, c) in &candles {
        assert_eq!(c.symbol, SYMBOL);
        assert_eq!(c.interval, "5m");
        assert_eq!(c.close_time, c.open_time + FIVE_MIN - 1);
        assert_eq!(*id, candle_event_id(SYMBOL, "5m", c.open_time));
    }
    let marks = market
        .iter()
        .filter(|e| matches!(&e.event, Event::MarkPriceUpdated(m) if m.symbol == SYMBOL))
        .count();
    assert!(marks >= 1, "no mark price published");
    let ids: HashSet<_> = candles.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(signals.len(), 6);
    for (s, (_, c)) in signals.iter().zip(&candles) {
        assert_eq!(s.candle_open_time, c.open_time);
        assert_eq!(s.model, "momentum");
        assert_eq!(s.model_version, "momentum-default");
        assert_eq!(s.features.len(), qt_features::N_FEATURES);
        assert!(s.features.contains_key("change_24h"));
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bot_publishes_the_candles_missed_while_down_once_each_and_keeps_its_model_and_pause()
 {
    let mut f = Fixture::start(|_, _| {}).await;
    f.step(1).await;
    f.wait_signals(1).await;
    f.tell(kill(true)).await;
    let (path, sha) = eager_momentum(f.dir.path(), "m-2");
    f.tell(deployed(&path, &sha, "m-2")).await;
    f.step(1).await;
    f.wait_signals(2).await;
    f.stop_bot().await;
    f.step(3).await;
    f.start_bot().await;
    // The three candles are published during the restart's warm-up, from REST, by the model
    // deployed before the restart.
    f.wait_signals(5).await;
    assert_eq!(f.stats.candles_from_rest.load(Ordering::Relaxed), 3);
    f.step(1).await;
    let s = f.wait_signals(6).await;
    let candles = f.candles().await;
    assert_eq!(candles.len(), 6, "{candles:#?}");
    for w in candles.windows(2) {
        assert_eq!(
            w[1].open_time - w[0].open_time,
            FIVE_MIN,
            "a candle skipped or doubled"
        );
    }
    assert_eq!(f.stats.candles_live.load(Ordering::Relaxed), 1);
    assert!(s[1..].iter().all(|s| s.model_version == "m-2"), "{s:#?}");
    assert_ne!(s[5].action, SignalAction::Hold);
    assert!(
        f.intents().await.is_empty(),
        "the kill switch survives the restart"
    );
    f.stop().await;
}

fn kill(enabled: bool) -> Event {
    Event::SetKillSwitch(SetKillSwitch {
        command_id: format!("kill-{enabled}"),
        enabled,
        reason: "test".into(),
        requested_by: "test".into(),
    })
}

fn deployed(path: &std::path::Path, sha: &str, version: &str) -> Event {
    Event::ModelDeployed(ModelDeployed {
        artifact: ModelArtifactRef {
            model_version: version.into(),
            model: "momentum".into(),
            artifact_uri: path.display().to_string(),
            sha256: sha.into(),
        },
        metrics: BTreeMap::new(),
        deployed_at: now_ms(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn momentum_past_the_threshold_sends_one_intent_and_none_while_pending_open_or_cooling_down()
{
    let mut f = Fixture::start(|dir, s| {
        let (path, _) = eager_momentum(dir, "m-eager");
        s.model_artifact = Some(path);
        // Short, so that after the restart below only the cooldown can block the entry.
        s.pending_timeout_seconds = 3;
    })
    .await;

    f.step(1).await;
    let signals = f.wait_signals(1).await;
    let intents = f.intents().await;
    assert_ne!(
        signals[0].action,
        SignalAction::Hold,
        "the eager model always acts"
    );
    assert_eq!(intents.len(), 1);
    let first = &intents[0];
    assert_eq!(
        first.intent_id,
        intent_id(SYMBOL, signals[0].candle_open_time)
    );
    let expected_side = match signals[0].action {
        SignalAction::Buy => PositionSide::Long,
        _ => PositionSide::Short,
    };
    assert_eq!(first.side, expected_side);
    assert_eq!(first.leverage, 10);
    // $250 at 10×, floored to BTCUSDT's 0.001 step.
    let notional = first.quantity * first.reference_price;
    assert!(notional <= Decimal::from(2500), "{notional}");
    assert!(
        notional > Decimal::from(2500) - first.reference_price / Decimal::from(1000),
        "{notional}"
    );
    assert_eq!(first.quantity, first.quantity.round_dp(3));
    let sig = first.signal.as_ref().unwrap();
    assert_eq!(sig.model_version, "m-eager");
    assert_eq!(sig.confidence, signals[0].confidence);

    // Pending: the next candle signals but sends nothing.
    f.step(1).await;
    f.wait_signals(2).await;
    assert_eq!(
        f.intents().await.len(),
        1,
        "a second intent while one is pending"
    );

    // Rejected: the symbol is free again.
    f.tell(Event::OrderRejected(OrderRejected {
        intent_id: first.intent_id.clone(),
        client_order_id: None,
        symbol: SYMBOL.into(),
        reason: RejectReason::MaxConcurrentPositions,
        message: "test".into(),
        exchange_code: None,
        until_ms: None,
    }))
    .await;
    f.step(1).await;
    let signals = f.wait_signals(3).await;
    let intents = f.intents().await;
    let second_sent = std::time::Instant::now();
    assert_eq!(intents.len(), 2);
    assert_eq!(
        intents[1].intent_id,
        intent_id(SYMBOL, signals[2].candle_open_time)
    );

    // Opened: no entry while the position is open.
    let opened = PositionOpened {
        position_id: "p-1".into(),
        symbol: SYMBOL.into(),
        side: intents[1].side,
        quantity: intents[1].quantity,
        entry_price: intents[1].reference_price,
        leverage: 10,
        intent_id: intents[1].intent_id.clone(),
        opened_at: now_ms(),
        signal: intents[1].signal.clone(),
    };
    f.tell(Event::PositionOpened(opened.clone())).await;
    f.step(1).await;
    f.wait_signals(4).await;
    assert_eq!(
        f.intents().await.len(),
        2,
        "an intent while a position is open"
    );

    // Closed just now: no entry during the cooldown.
    f.tell(Event::PositionClosed(PositionClosed {
        position_id: "p-1".into(),
        symbol: SYMBOL.into(),
        side: opened.side,
        max_quantity: opened.quantity,
        entry_price: opened.entry_price,
        exit_price: opened.entry_price,
        realized_pnl: Decimal::ZERO,
        fees: Decimal::ZERO,
        net_pnl: Decimal::ZERO,
        opened_at: opened.opened_at,
        closed_at: now_ms(),
        reason: "stop".into(),
        signal: None,
    }))
    .await;
    f.step(1).await;
    f.wait_signals(5).await;
    assert_eq!(f.intents().await.len(), 2, "an intent during the cooldown");

    // A restart remembers the cooldown (from the tail of `positions`), once the intent it
    // would otherwise still count as pending has timed out.
    f.stop_bot().await;
    tokio::time::sleep(std::time::Duration::from_secs(3).saturating_sub(second_sent.elapsed()))
        .await;
    f.start_bot().await;
    f.step(1).await;
    f.wait_signals(6).await;
    assert_eq!(
        f.intents().await.len(),
        2,
        "an intent during the cooldown after a restart"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_deployed_on_models_takes_effect_on_the_next_candle_and_the_kill_switch_pauses_entries()
 {
    let f = Fixture::start(|_, _| {}).await;
    f.step(1).await;
    let s = f.wait_signals(1).await;
    assert_eq!(s[0].model_version, "momentum-default");

    f.tell(kill(true)).await;
    let (path, sha) = eager_momentum(f.dir.path(), "m-2");
    let artifact = ModelArtifactRef {
        model_version: "m-2".into(),
        model: "momentum".into(),
        artifact_uri: path.display().to_string(),
        sha256: sha,
    };
    f.tell(Event::ModelDeployed(ModelDeployed {
        artifact: artifact.clone(),
        metrics: BTreeMap::new(),
        deployed_at: now_ms(),
    }))
    .await;
    f.step(1).await;
    let s = f.wait_signals(2).await;
    assert_eq!(
        s[1].model_version, "m-2",
        "the new model runs from the next candle"
    );
    assert_ne!(s[1].action, SignalAction::Hold);
    assert_eq!(s[1].confidence, 1.0);
    assert!(
        f.intents().await.is_empty(),
        "an intent with the kill switch on"
    );

    // A deployment whose file does not match its checksum is refused; the model stays.
    f.tell(Event::ModelDeployed(ModelDeployed {
        artifact: ModelArtifactRef {
            model_version: "m-3".into(),
            sha256: "00".repeat(32),
            ..artifact
        },
        metrics: BTreeMap::new(),
        deployed_at: now_ms(),
    }))
    .await;
    f.tell(kill(false)).await;
    f.step(1).await;
    let s = f.wait_signals(3).await;
    assert_eq!(s[2].model_version, "m-2");
    let intents = f.intents().await;
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0].signal.as_ref().unwrap().model_version, "m-2");
    let dlq = f.read(Stream::Dlq).await;
    assert_eq!(dlq.len(), 1, "the bad deployment is dead-lettered");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporal_model_deployed_on_models_is_swapped_in_and_decides_from_the_next_candle() {
    let f = Fixture::start(|_, _| {}).await;
    // The simulator serves 300 history candles (a dozen feature vectors after the features'
    // warm-up): 30 more live candles give the bot more than the temporal model's 32.
    f.step(30).await;
    let before = f.wait_signals(30).await;
    assert!(before.iter().all(|x| x.model_version == "momentum-default"));
    let (path, sha) = temporal_model(f.dir.path(), "t-2");
    f.tell(Event::ModelDeployed(ModelDeployed {
        artifact: ModelArtifactRef {
            model_version: "t-2".into(),
            model: "temporal".into(),
            artifact_uri: path.display().to_string(),
            sha256: sha,
        },
        metrics: BTreeMap::new(),
        deployed_at: now_ms(),
    }))
    .await;
    f.step(10).await;
    let s = f.wait_signals(40).await;
    assert!(
        s[30..]
            .iter()
            .all(|x| x.model == "temporal" && x.model_version == "t-2"),
        "the deployed model answers from the next candle"
    );
    // The swap replayed the symbol's latest vectors into it, so it prices its very first
    // candle (a HOLD then carries 1 − P(gain) of the better side) instead of holding at full
    // confidence for 31 candles without history.
    assert!(s[30..].iter().all(|x| x.confidence < 1.0), "{:?}", &s[30..]);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_top_n_universe_follows_the_largest_24h_quote_volume() {
    let mut f = Fixture::infra_with(&["BTCUSDT", "ETHUSDT", "XRPUSDT"], |_, s| {
        s.symbols.clear();
        s.top_n = 1;
    })
    .await;
    f.start_bot().await;
    let tickers: Vec<serde_json::Value> = f
        .http
        .get(format!("{}/fapi/v1/ticker/24hr", f.sim_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let quote =
        |t: &serde_json::Value| -> Decimal { t["quoteVolume"].as_str().unwrap().parse().unwrap() };
    let top = tickers
        .iter()
        .max_by(|a, b| quote(a).cmp(&quote(b)))
        .unwrap()["symbol"]
        .as_str()
        .unwrap()
        .to_string();
    f.step(1).await;
    f.wait_signals(1).await;
    f.step(1).await;
    f.wait_signals(2).await;
    let candles = f.candles().await;
    assert_eq!(candles.len(), 2, "{candles:#?}");
    assert!(
        candles.iter().all(|c| c.symbol == top),
        "{top}: {candles:#?}"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_the_exchange_does_not_list_is_left_out_with_an_alert_and_the_others_trade() {
    let f = Fixture::start(|_, s| s.symbols = vec!["NOSUCHUSDT".into(), SYMBOL.into()]).await;
    let alerts = f.read(Stream::Alerts).await;
    assert_eq!(alerts.len(), 1);
    assert!(
        matches!(&alerts[0].event, Event::AlertRaised(a) if a.key == "NOSUCHUSDT"),
        "{alerts:?}"
    );
    f.step(1).await;
    f.wait_signals(1).await;
    assert!(f.candles().await.iter().all(|c| c.symbol == SYMBOL));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_validated_model_the_bot_holds_on_every_candle_and_sends_no_entry() {
    // The default: model none. The same candles make an eager momentum model act (see
    // `momentum_past_the_threshold_sends_one_intent…`).
    let f = Fixture::start(|_, s| s.model = trading_bot::ModelChoice::None).await;
    for n in 1..=3 {
        f.step(1).await;
        f.wait_signals(n).await;
    }
    let signals = f.signals().await;
    assert_eq!(signals.len(), 3);
    for s in &signals {
        assert_eq!(
            (s.model.as_str(), s.model_version.as_str()),
            ("none", "none")
        );
        assert_eq!(s.action, qt_events::SignalAction::Hold);
    }
    assert!(f.intents().await.is_empty());
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drawdown_breaker_refusal_holds_entries_until_resumed_also_across_a_restart() {
    let mut f = Fixture::start(|dir, s| {
        let (path, _) = eager_momentum(dir, "m-eager");
        s.model_artifact = Some(path);
    })
    .await;
    let refuse = |intent: &qt_events::OpenPosition| {
        Event::OrderRejected(OrderRejected {
            intent_id: intent.intent_id.clone(),
            client_order_id: None,
            symbol: SYMBOL.into(),
            reason: RejectReason::DrawdownBreaker,
            message: "drawdown breaker tripped".into(),
            exchange_code: None,
            until_ms: None,
        })
    };
    let resume = |id: &str| {
        Event::ResumeTrading(qt_events::ResumeTrading {
            command_id: id.into(),
            reason: "losses reviewed".into(),
            requested_by: "test".into(),
        })
    };
    f.step(1).await;
    f.wait_signals(1).await;
    let first = f.intents().await.remove(0);
    f.tell(refuse(&first)).await;
    // Paused: the eager model signals on every candle, nothing is sent.
    f.step(2).await;
    f.wait_signals(3).await;
    assert_eq!(f.intents().await.len(), 1);
    f.tell(resume("r1")).await;
    f.step(1).await;
    f.wait_signals(4).await;
    let intents = f.intents().await;
    assert_eq!(intents.len(), 2, "entries again after the resume");

    // Refused again and resumed again; then a restart. The restart reads the refusal back from
    // the tail of `orders`, and the resume (already taken, so not delivered again) from the
    // tail of `control`: it trades.
    f.tell(refuse(&intents[1])).await;
    f.tell(resume("r2")).await;
    f.stop_bot().await;
    f.start_bot().await;
    f.step(1).await;
    f.wait_signals(5).await;
    assert_eq!(
        f.intents().await.len(),
        3,
        "the resume read at start ends the pause"
    );
    // A refusal after the last resume holds entries after a restart too.
    let third = f.intents().await.remove(2);
    f.tell(refuse(&third)).await;
    f.stop_bot().await;
    f.start_bot().await;
    f.step(1).await;
    f.wait_signals(6).await;
    assert_eq!(f.intents().await.len(), 3, "still paused after the restart");
    f.stop().await;
}
