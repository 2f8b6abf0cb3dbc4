//! The learning loop in process, with a fixed clock, real Redis and a real SQLite file:
//! schedule, on-demand retrain, the gate against a worse challenger, the registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, seed_days, tiny_settings};

const HOUR: i64 = 3_600_000;

/// A tick that must run a cycle to its end (its failure detail otherwise).
async fn run(clm: &clm::Clm) -> clm::cycle::CycleReport {
    match clm.tick().await.unwrap() {
        Some(r) => r,
        None => panic!("no run: {:?}", clm.schedule().await.unwrap().last_result),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrains_on_schedule_only_when_due_and_enough_new_samples_and_on_request() {
    let f = Fixture::new();
    let mut settings = tiny_settings(f.dir.path());
    settings.min_new_samples = 100;
    let clm = f.clm(settings).await;
    let rest = seed_days(&clm, 7).await;
    let t0 = clm.db.last_candle_time().await.unwrap().unwrap() + 300_000;
    f.clock.set(t0);

    // A new install trains its first model at once; it ships on the absolute minimums.
    let first = run(&clm).await;
    assert!(first.decision.promote, "{:?}", first.decision);
    assert!(first.champion.is_none());
    let s = clm.schedule().await.unwrap();
    assert_eq!(s.runs, 1);
    assert_eq!(s.next_run_at, t0 + 24 * HOUR);
    assert_eq!(s.last_result.as_ref().unwrap().outcome, "promoted");
    let deployed = f.deployed().await;
    assert_eq!(deployed.len(), 1);
    assert_eq!(deployed[0].1, first.version);
    assert_eq!(
        clm.champion().await.unwrap().unwrap().version,
        first.version
    );

    // Not due yet: nothing runs, however much data arrives.
    for (sym, c) in &rest {
        clm.db.insert_candles(sym, &c[..100]).await.unwrap();
    }
    f.clock.set(t0 + 23 * HOUR);
    assert!(clm.tick().await.unwrap().is_none());

    // Due, but the 100 new samples are counted from the data the last run saw: with 2 x 100
    // candles it runs. First show the threshold holds with a higher setting.
    let mut strict = tiny_settings(f.dir.path());
    strict.min_new_samples = 1_000;
    let strict_clm = f.clm(strict).await;
    f.clock.set(t0 + 25 * HOUR);
    assert!(
        strict_clm.tick().await.unwrap().is_none(),
        "too few new samples"
    );
    let second = run(&clm).await;
    assert_eq!(second.champion.as_ref().unwrap().version, first.version);
    assert_eq!(second.oos_start_ms, second.train.split_time_ms);
    let s = clm.schedule().await.unwrap();
    assert_eq!(s.runs, 2);
    assert_eq!(s.next_run_at, t0 + 49 * HOUR);

    // On request: runs at the next tick although the schedule is not due and no data came.
    f.clock.set(t0 + 26 * HOUR);
    assert!(clm.tick().await.unwrap().is_none());
    clm.request("cmd-1").await.unwrap();
    clm.request("cmd-2").await.unwrap(); // a second request before the run is the same run
    assert!(clm.tick().await.unwrap().is_some());
    assert!(clm.tick().await.unwrap().is_none());
    let s = clm.schedule().await.unwrap();
    assert_eq!(s.runs, 3);
    assert!(s.requested.is_none());
    assert_eq!(clm.db.decisions().await.unwrap().len(), 3);
    assert_eq!(clm.db.models().await.unwrap().len(), 3);
    // Registry index for qtctl.
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(f.dir.path().join("models/registry.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(index["models"].as_array().unwrap().len(), 3);
    assert_eq!(
        index["champion"].as_str(),
        clm.champion().await.unwrap().map(|c| c.version).as_deref()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_recorded_with_its_reason_and_retried_within_the_hour() {
    let f = Fixture::new();
    let mut settings = tiny_settings(f.dir.path());
    settings.min_new_samples = 1;
    // A 5% taker fee: no trade nets a gain, so no BUY/SELL label, and training refuses.
    settings.backtest.fill.taker_fee = rust_decimal::Decimal::new(5, 2);
    let clm = f.clm(settings).await;
    seed_days(&clm, 7).await;
    let t0 = clm.db.last_candle_time().await.unwrap().unwrap() + 300_000;
    f.clock.set(t0);
    assert!(clm.tick().await.unwrap().is_none());
    let s = clm.schedule().await.unwrap();
    let last = s.last_result.unwrap();
    assert_eq!(last.outcome, "failed");
    assert!(last.detail.contains("no Buy label"), "{}", last.detail);
    assert_eq!(s.next_run_at, t0 + HOUR);
    assert!(s.in_progress.is_none());
    assert!(f.deployed().await.is_empty());
    assert!(clm.db.models().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candles_older_than_two_windows_are_deleted_after_a_run() {
    let f = Fixture::new();
    let mut settings = tiny_settings(f.dir.path());
    settings.window_days = 3;
    let clm = f.clm(settings).await;
    seed_days(&clm, 8).await;
    let end = clm.db.last_candle_time().await.unwrap().unwrap();
    f.clock.set(end + 300_000);
    run(&clm).await;
    let first = end - 6 * 86_400_000;
    for sym in common::SYMBOLS {
        let kept = clm.db.candles(sym, 0, i64::MAX).await.unwrap();
        assert_eq!(kept.first().unwrap().open_time, first, "{sym}");
        assert_eq!(kept.last().unwrap().open_time, end);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_champion_raises_an_alert_once() {
    let f = Fixture::new();
    let mut settings = tiny_settings(f.dir.path());
    settings.monitor.every_seconds = 0;
    settings.monitor.max_model_age_hours = 48.0;
    let clm = f.clm(settings).await;
    seed_days(&clm, 7).await;
    let t0 = clm.db.last_candle_time().await.unwrap().unwrap() + 300_000;
    f.clock.set(t0);
    let champion = run(&clm).await.version;
    let alerts = || async {
        f.entries(qt_events::Stream::Alerts)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                qt_events::Event::AlertRaised(a) => Some(a),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(alerts().await.is_empty(), "a fresh model is fine");
    // No new data: no retrain, the champion ages.
    f.clock.set(t0 + 60 * HOUR);
    assert!(clm.tick().await.unwrap().is_none());
    f.clock.set(t0 + 61 * HOUR);
    assert!(clm.tick().await.unwrap().is_none());
    let raised = alerts().await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].rule, "model_stale");
    assert_eq!(raised[0].key, champion);
    assert_eq!(raised[0].service, "clm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_runs_a_walk_forward_of_the_recipe_against_the_baselines_and_keeps_its_card() {
    let f = Fixture::new();
    let mut settings = tiny_settings(f.dir.path());
    // Six days: folds of 2 training days and 1 test day.
    settings.walkforward.enabled = true;
    settings.walkforward.train_days = 2.0;
    settings.walkforward.test_days = 1.0;
    settings.walkforward.random_paths = 100;
    let clm = f.clm(settings).await;
    seed_days(&clm, 7).await;
    f.clock
        .set(clm.db.last_candle_time().await.unwrap().unwrap() + 300_000);
    let report = run(&clm).await;
    let card = match &report.walkforward {
        Some(Ok(card)) => card.clone(),
        other => panic!("no walk-forward card: {other:?}"),
    };
    assert!(card.folds >= 3, "{card:?}");
    assert_eq!(card.random_paths, 100);
    assert_eq!(card.trials, 1, "the first decision: one trial");
    let names: Vec<&str> = report
        .decision
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for n in [
        "walkforward_beats_momentum",
        "walkforward_beats_buy_and_hold",
        "walkforward_beats_random",
        "walkforward_deflated_sharpe",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    assert_eq!(
        report.decision.promote,
        report.decision.checks.iter().all(|c| c.passed)
    );
    // The card is kept with the model in the registry, and the next decision counts this one.
    let row = clm.db.model(&report.version).await.unwrap().unwrap();
    assert_eq!(
        row.metadata["walkforward"]["Ok"]["folds"],
        serde_json::json!(card.folds),
        "{}",
        row.metadata
    );
    f.clock.advance(HOUR);
    clm.request("again").await.unwrap();
    let second = run(&clm).await;
    let Some(Ok(c2)) = &second.walkforward else {
        panic!("{:?}", second.walkforward)
    };
    assert_eq!(c2.trials, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliberately_worse_challenger_is_rejected_and_the_champion_stays() {
    let f = Fixture::new();
    let clm = f.clm(tiny_settings(f.dir.path())).await;
    seed_days(&clm, 7).await;
    f.clock
        .set(clm.db.last_candle_time().await.unwrap().unwrap() + 300_000);
    let champion = run(&clm).await;
    assert!(champion.decision.promote);

    // A momentum model whose thresholds no market reaches: it never trades (HOLD only).
    let mut worse = tiny_settings(f.dir.path());
    worse.kind = qt_models::ModelKind::Momentum;
    worse.momentum.buy_threshold = 5.0;
    worse.momentum.sell_threshold = -5.0;
    let clm2 = f.clm(worse).await;
    f.clock.advance(HOUR);
    clm2.request("worse").await.unwrap();
    let report = run(&clm2).await;
    assert!(!report.decision.promote);
    let why = report.decision.why_not();
    assert!(why.contains("signal_mix"), "{why}");
    assert!(why.contains("min_trades"), "{why}");
    assert!(
        report.champion_backtest.is_some(),
        "both models were backtested"
    );
    assert_eq!(report.challenger.trades, 0);
    assert_eq!(
        clm2.champion().await.unwrap().unwrap().version,
        champion.version
    );
    let row = clm2.db.model(&report.version).await.unwrap().unwrap();
    assert_eq!(row.status, "rejected");
    let decisions = clm2.db.decisions().await.unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(!decisions[0].promoted);
    assert_eq!(
        decisions[0].champion.as_deref(),
        Some(champion.version.as_str())
    );
    assert_eq!(f.deployed().await.len(), 1, "no second deployment");
    assert_eq!(
        clm2.schedule().await.unwrap().last_result.unwrap().outcome,
        "rejected"
    );
}
