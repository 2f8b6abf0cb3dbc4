//! The service's wiring: consumer handlers for `intents`, `control` and `portfolio`, the user
//! data stream task, the periodic reconciliation and polling, and startup order (user stream
//! first, then reconciliation, then intents).

use std::sync::Arc;
use std::time::Duration;

use qt_bus::{Delivery, Handler, HandlerError, Outcome};
use qt_events::{Event, Stream};
use qt_exchange::{
    AccountModes, Exchange, ExchangeConfig, ModesError, PositionMode, check_account_modes,
};
use qt_risk::utc_day;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::db::Db;
use crate::error::ExecError;
use crate::order::Leg;
use crate::service::Execution;

/// Handles `qt:intents`; runs on several symbols at once (the risk book's lock makes every
/// admission atomic, and one symbol's intents stay in order, see `Settings::intent_lanes`).
#[derive(Debug)]
pub struct IntentHandler<E>(pub Arc<Execution<E>>);

impl<E> Clone for IntentHandler<E> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<E: Exchange + Clone + 'static> Handler for IntentHandler<E> {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let span = tracing::info_span!("intent", event_id = %d.envelope.id,
            corr = %d.envelope.corr, kind = d.envelope.type_name());
        let out = self
            .0
            .handle_intent_at(&d.envelope, Some(&d.entry_id))
            .instrument(span)
            .await?;
        crate::fills::log_facts(&out);
        Ok(Outcome::publish(out))
    }
}

/// Handles `qt:control`: kill switch, resume after the drawdown breaker, and close-all.
#[derive(Debug)]
pub struct ControlHandler<E>(pub Arc<Execution<E>>);

impl<E: Exchange + Clone + 'static> Handler for ControlHandler<E> {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let ex = &self.0;
        match &d.envelope.event {
            Event::SetKillSwitch(k) => {
                // Once per event id: a stale redelivery must not flip a newer setting back.
                let mut book = ex.book.lock().await;
                let mut next = book.clone();
                next.kill_switch = k.enabled;
                let now = ex.now();
                let mut tx = ex.db.begin().await.map_err(ExecError::from)?;
                if !Db::mark_processed(&mut tx, &d.envelope.id, now)
                    .await
                    .map_err(ExecError::from)?
                {
                    return Ok(Outcome::done());
                }
                ex.commit_book(tx, &mut book, next, &[], now).await?;
                tracing::warn!(enabled = k.enabled, reason = %k.reason, by = %k.requested_by,
                    "kill switch set");
                Ok(Outcome::done())
            }
            Event::ResumeTrading(r) => {
                ex.resume_trading(&d.envelope, r).await?;
                Ok(Outcome::done())
            }
            Event::CloseAll(c) => {
                let mut out = Vec::new();
                let positions = ex.exchange.positions(None).await.map_err(ExecError::from)?;
                let mut symbols: Vec<String> = positions
                    .iter()
                    .filter(|p| !p.position_amt.is_zero())
                    .map(|p| p.symbol.clone())
                    .collect();
                symbols.sort();
                symbols.dedup();
                for sym in &symbols {
                    // Entry orders and protective orders go first, then the position.
                    for row in ex.db.live_orders().await.map_err(ExecError::from)? {
                        if &row.symbol == sym && row.state != crate::order::OrderState::Sending {
                            out.extend(ex.cancel_row(Some(&d.envelope), &row, "close_all").await?);
                        }
                    }
                    out.extend(
                        ex.close_symbol(
                            &d.envelope,
                            &c.command_id,
                            Leg::CloseAll(sym.clone()),
                            sym,
                            "close_all",
                            None,
                        )
                        .await?,
                    );
                }
                Ok(Outcome::publish(out))
            }
            _ => Ok(Outcome::done()),
        }
    }
}

/// Handles `qt:portfolio`: equity and today's realized PnL into the risk book; the drawdown
/// breaker's crossings (50% and 80% of its limit, the trip) become alerts, queued with the book.
#[derive(Debug)]
pub struct PortfolioHandler<E>(pub Arc<Execution<E>>);

impl<E: Exchange + Clone + 'static> Handler for PortfolioHandler<E> {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let ex = &self.0;
        if let Event::PortfolioSnapshot(s) = &d.envelope.event {
            let now = ex.now();
            let mut book = ex.book.lock().await;
            let mut next = book.clone();
            next.roll_day(now);
            if s.equity > rust_decimal::Decimal::ZERO {
                next.equity = Some(s.equity);
            }
            // The portfolio's figure comes from the exchange's account: it wins for today.
            if utc_day(s.ts) == next.day {
                next.realized_today = s.realized_pnl_today;
            }
            ex.guard.observe(&mut next, now);
            let crossing = ex.guard.drawdown_crossing(&mut next);
            let alerts: Vec<_> = crossing
                .iter()
                .map(|c| ex.drawdown_alert(c, &d.envelope.id).caused_by(&d.envelope))
                .collect();
            let mut tx = ex.db.begin().await.map_err(ExecError::from)?;
            if !Db::mark_processed(&mut tx, &d.envelope.id, now)
                .await
                .map_err(ExecError::from)?
            {
                return Ok(Outcome::done());
            }
            ex.commit_book(tx, &mut book, next, &alerts, now).await?;
            drop(book);
            if let Some(c) = crossing {
                tracing::warn!(level = c.level.as_str(), drawdown = %c.drawdown,
                    limit = %c.limit, peak = %c.peak, equity = %c.equity, "drawdown alert");
            }
            if !alerts.is_empty()
                && let Err(e) = ex.flush_outbox().await
            {
                tracing::warn!(error = %e, "outbox flush failed; the periodic pass retries");
            }
        }
        Ok(Outcome::done())
    }
}

/// Follows the user data stream until `shutdown`, applying every event.
pub async fn run_user_stream<E: Exchange + Clone + 'static>(
    ex: Arc<Execution<E>>,
    config: ExchangeConfig,
    shutdown: CancellationToken,
) {
    let (mut rx, handle) = qt_exchange::ws::spawn_user_stream(ex.exchange.clone(), &config, 1024);
    loop {
        let ev = tokio::select! {
            () = shutdown.cancelled() => break,
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
        };
        // Cut short by shutdown: the fill is applied from the poll or the stream's replay.
        tokio::select! {
            () = shutdown.cancelled() => break,
            r = ex.on_user_event(ev) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "user event not applied; polling will retry");
                }
            }
        }
    }
    drop(rx);
    handle.shutdown().await;
}

/// Polls live orders and reconciles with the exchange on their intervals until `shutdown`.
pub async fn run_periodic<E: Exchange + Clone + 'static>(
    ex: Arc<Execution<E>>,
    shutdown: CancellationToken,
) {
    let mut reconcile =
        tokio::time::interval(ex.settings.reconcile_interval.max(Duration::from_secs(1)));
    let mut poll = tokio::time::interval(ex.settings.poll_interval.max(Duration::from_millis(200)));
    reconcile.tick().await;
    poll.tick().await;
    // A pass cut short by shutdown is safe to drop: its transaction rolls back, and every step
    // is repeated by the next pass, as after a crash.
    let pass = async |reconcile_now: bool| {
        if reconcile_now {
            if let Err(e) = ex.reconcile().await {
                tracing::warn!(error = %e, "reconciliation failed; next pass retries");
            }
            return;
        }
        if let Err(e) = ex.poll_orders().await {
            tracing::warn!(error = %e, "order poll failed");
        }
        if let Err(e) = ex.flush_outbox().await {
            tracing::warn!(error = %e, "outbox flush failed");
        }
    };
    loop {
        let reconcile_now = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = reconcile.tick() => true,
            () = ex.reconcile_soon.notified() => true,
            _ = poll.tick() => false,
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = pass(reconcile_now) => {}
        }
    }
}

/// The streams execution reads and writes.
/// The exchange settings execution can trade with: it keeps one net position per symbol, so
/// `QT_POSITION_MODE=hedge` is a bad setting (exit 2 naming it, and what hedge mode lacks).
pub fn supported_exchange(xcfg: &ExchangeConfig) -> Result<(), String> {
    if xcfg.account_modes.position_mode == PositionMode::Hedge {
        return Err(
            "QT_POSITION_MODE: expected one-way, got \"hedge\" (the simulator, the exchange \
             client, exit-brain — a plan, stop and ladder per side — and the intents — \
             position_side on ClosePosition/ReducePosition — support hedge mode, but \
             execution still keeps one net position per symbol: the risk book and guard \
             (qt-risk: one position per symbol, an entry on the other side refused), its \
             database (one open position per symbol), fills, protection legs, \
             reconciliation and restatement are not yet kept per side)"
                .to_string(),
        );
    }
    Ok(())
}

/// Reads the account's position and multi-assets modes and refuses to start on an account
/// that is not in the configured ones: they change what every order means. A mismatch is
/// [`qt_runtime::StartRefused`] (exit 2, like a bad setting); an exchange that cannot be
/// reached is an ordinary error (exit 1, restarted).
pub async fn refuse_other_account_modes<E: Exchange>(
    exchange: &E,
    want: AccountModes,
) -> anyhow::Result<()> {
    match check_account_modes(exchange, want).await {
        Ok(modes) => {
            tracing::info!(modes = %modes.describe(), "account modes checked");
            Ok(())
        }
        Err(ModesError::Mismatch(m)) => Err(qt_runtime::StartRefused(m).into()),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

pub const GROUPS: &[Stream] = &[Stream::Intents, Stream::Portfolio, Stream::Control];
/// The streams execution publishes.
pub const PRODUCES: &[Stream] = &[Stream::Orders, Stream::Positions, Stream::Alerts];
