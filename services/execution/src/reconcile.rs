//! Reconciliation with the exchange (the source of truth), on start before intents are taken
//! and every minute: live orders (by polling), funding fees (the income history),
//! conditional orders and positions. A difference is corrected in the database and the risk
//! book, and raises an `AlertRaised`.
//!
//! Positions are compared while fill processing is held (`fills_lock`), exchange first, then
//! the records. A difference on a symbol with a plain order in flight is not one: the order's
//! fill is on its way. Any other difference is acted on only when the previous pass saw exactly
//! the same one (a stop that fired on the exchange a moment ago has its fill on the way too), or
//! on the first pass after a start, which runs before any intent is taken.

use std::collections::{BTreeMap, BTreeSet};

use qt_events::ids::derived_event_id;
use qt_events::{Envelope, Event, PositionClosed, PositionOpened, Severity, Stream};
use qt_exchange::{AlgoStatus, Exchange};
use qt_risk::BookPosition;
use rust_decimal::Decimal;

use crate::db::{Db, PositionRow};
use crate::error::ExecError;
use crate::order::OrderState;
use crate::service::{Execution, PositionsTail};

/// A SENDING record older than this (exchange time, ms) has no handler working on it any more
/// (its intent was dead-lettered or dropped): reconciliation settles it.
pub const ORPHAN_AFTER_MS: i64 = 5 * 60_000;

/// How far back (ms) closed positions are restated after a loss on the `positions` stream.
const RESTATE_CLOSED_MS: i64 = 10 * 60_000;

/// A plain order changed this recently (ms) may have a fill on its way: its symbol's position
/// is not compared in this pass.
const IN_FLIGHT_MS: i64 = 60_000;

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// Settles SENDING records nobody is working on: adopted when the exchange has the order,
    /// else recorded as rejected (it never executed) so its in-flight reservation is released.
    async fn settle_orphans(&self) -> Result<Vec<Envelope>, ExecError> {
        let now_ex = self.exchange.server_now_ms();
        let mut alerts = Vec::new();
        for row in self.db.live_orders().await? {
            if row.state != OrderState::Sending
                || now_ex.saturating_sub(row.sent_at) < ORPHAN_AFTER_MS
            {
                continue;
            }
            let found = if row.is_conditional() {
                match self.exchange.query_algo_order(&row.client_order_id).await {
                    Ok(a) => Some(a.algo_id.to_string()),
                    Err(e) if e.is_no_such_order() => None,
                    Err(e) => return Err(ExecError::unavailable(e)),
                }
            } else {
                match self
                    .exchange
                    .query_order(&row.symbol, &row.client_order_id)
                    .await
                {
                    Ok(o) => Some(o.order_id.to_string()),
                    Err(e) if e.is_no_such_order() => None,
                    Err(e) => return Err(ExecError::unavailable(e)),
                }
            };
            let mut envs = match found {
                Some(id) => {
                    self.db
                        .mark_acked(&row.client_order_id, &id, self.now())
                        .await?;
                    let mut r = row.clone();
                    r.exchange_order_id = Some(id);
                    vec![self.accepted_event(None, &r)]
                }
                None => {
                    self.record_abandoned(&row).await?;
                    Vec::new()
                }
            };
            let alert = self.alert(
                "orphan_order_settled",
                &row.symbol,
                Severity::Warning,
                format!(
                    "order {} was left SENDING; {}",
                    row.client_order_id,
                    if envs.is_empty() {
                        "it never executed"
                    } else {
                        "adopted"
                    }
                ),
                &row.client_order_id,
            );
            alerts.push(alert.clone());
            envs.push(alert);
            self.publish_now(&envs).await?;
        }
        Ok(alerts)
    }

    /// One reconciliation pass; returns the alerts raised (already published).
    ///
    /// # Errors
    /// The exchange or the database unreachable.
    pub async fn reconcile(&self) -> Result<Vec<Envelope>, ExecError> {
        self.flush_outbox().await?;
        // Orphans first: an adopted order's fills are then picked up by the poll, before
        // positions are compared.
        let mut alerts = self.settle_orphans().await?;
        self.poll_orders().await?;
        // Funding fees whose stream update was missed (or came while execution was down).
        if let Err(e) = self.sync_funding().await {
            tracing::warn!(error = %e, "funding fees not read; the next pass retries");
        }
        let pass = self.now().to_string();

        // Conditional orders: recorded live ones the exchange no longer has. The records are
        // read before the exchange, so an order placed meanwhile is not among them.
        let live_rows = self.db.live_orders().await?;
        let open_algos = self.exchange.open_algo_orders(None).await?;
        let live_algo_ids: BTreeSet<&str> = open_algos
            .iter()
            .map(|a| a.client_algo_id.as_str())
            .collect();
        let known: BTreeSet<&str> = live_rows
            .iter()
            .map(|r| r.client_order_id.as_str())
            .collect();
        for row in &live_rows {
            if !row.is_conditional() || row.state == OrderState::Sending {
                continue;
            }
            if !live_algo_ids.contains(row.client_order_id.as_str()) {
                // `None`: the exchange does not know it.
                let status = match self.exchange.query_algo_order(&row.client_order_id).await {
                    Ok(a) => Some(a.algo_status),
                    Err(e) if e.is_no_such_order() => None,
                    Err(e) => return Err(ExecError::unavailable(e)),
                };
                // Ended meanwhile by the intent handler (a replaced leg): nothing to correct.
                let Some(row) = self
                    .db
                    .order(&row.client_order_id)
                    .await?
                    .filter(|r| !r.state.is_final())
                else {
                    continue;
                };
                let row = &row;
                if status
                    .as_ref()
                    .is_some_and(|s| !s.fired() && !s.ended_unfired())
                {
                    // Live after all (NEW, TRIGGERING): it was placed after the list was read.
                    continue;
                }
                if status.as_ref().is_some_and(AlgoStatus::fired) {
                    self.db
                        .mark_triggered(&row.client_order_id, None, self.now())
                        .await?;
                    continue;
                }
                let mut envs = self
                    .record_ended(None, row, status == Some(AlgoStatus::Expired), "reconciled")
                    .await?;
                envs.push(self.alert(
                    "conditional_order_missing",
                    &row.symbol,
                    Severity::Warning,
                    format!(
                        "conditional order {} ({}) is {} on the exchange; recorded as ended",
                        row.client_order_id,
                        row.leg,
                        status.as_ref().map_or("MISSING", AlgoStatus::as_str)
                    ),
                    &row.client_order_id,
                ));
                alerts.push(envs[envs.len() - 1].clone());
                self.publish_now(&envs).await?;
            }
        }
        for a in &open_algos {
            if !known.contains(a.client_algo_id.as_str())
                && self.db.order(&a.client_algo_id).await?.is_none()
            {
                alerts.push(self.alert(
                    "unknown_conditional_order",
                    &a.symbol,
                    Severity::Warning,
                    format!(
                        "conditional order {} on the exchange is not ours",
                        a.client_algo_id
                    ),
                    &a.client_algo_id,
                ));
            }
        }
        // Plain orders open on the exchange that we never recorded.
        let open_orders = self.exchange.open_orders(None).await?;
        for o in &open_orders {
            if self.db.order(&o.client_order_id).await?.is_none() {
                alerts.push(self.alert(
                    "unknown_order",
                    &o.symbol,
                    Severity::Warning,
                    format!("order {} on the exchange is not ours", o.client_order_id),
                    &o.client_order_id,
                ));
            }
        }

        // Positions: no fill is applied from here to the commit.
        let _serial = self.fills_lock.lock().await;
        let positions = self.exchange.positions(None).await?;
        let mut theirs: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        let mut marks: Vec<(String, Decimal)> = Vec::new();
        for p in &positions {
            // Fresh marks for exposure and unrealized PnL (execution reads no market stream).
            if p.mark_price > Decimal::ZERO {
                marks.push((p.symbol.clone(), p.mark_price));
            }
        }
        for p in positions.iter().filter(|p| !p.position_amt.is_zero()) {
            let e = theirs.entry(p.symbol.clone()).or_default();
            e.0 += p.position_amt;
            e.1 = p.entry_price;
        }
        // Orders in flight before positions: a fill committed between the two reads then shows
        // as an order in flight, never as a difference. An order resting longer than
        // IN_FLIGHT_MS (a limit waiting for its price) no longer shields its symbol.
        let recent = self.now() - IN_FLIGHT_MS;
        let in_flight: BTreeSet<String> = self
            .db
            .live_orders()
            .await?
            .into_iter()
            .filter(|o| !o.is_conditional() && o.updated_at >= recent)
            .map(|o| o.symbol)
            .collect();
        let ours: BTreeMap<String, PositionRow> = self
            .db
            .open_positions()
            .await?
            .into_iter()
            .map(|p| (p.symbol.clone(), p))
            .collect();
        let symbols: BTreeSet<String> = theirs.keys().chain(ours.keys()).cloned().collect();
        let now = self.now();
        let mut events = Vec::new();
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        for (sym, mark) in &marks {
            next.on_price(sym, *mark);
        }
        let mut suspects = self.suspects.lock().await;
        // Kept as it is until this pass commits: a failed pass must not count as a first one.
        let first_pass = suspects.is_none();
        let previous = suspects.clone().unwrap_or_default();
        let mut seen = std::collections::HashMap::new();
        let mut tx = self.db.begin().await?;
        for sym in symbols {
            let (amt, entry) = theirs.get(&sym).copied().unwrap_or_default();
            let mine = ours.get(&sym);
            let signed_mine = mine.map_or(Decimal::ZERO, |p| match p.side {
                qt_events::PositionSide::Long => p.quantity,
                qt_events::PositionSide::Short => -p.quantity,
            });
            if signed_mine == amt {
                // Make sure the book agrees with the records.
                if !amt.is_zero() && !next.positions().contains_key(&sym) {
                    next.set_position(
                        &sym,
                        BookPosition {
                            side: Self::side_of(amt),
                            qty: amt.abs(),
                            entry_price: entry,
                        },
                    );
                }
                continue;
            }
            if in_flight.contains(&sym) {
                tracing::debug!(symbol = %sym, exchange = %amt, records = %signed_mine, "position differs with an order in flight; not a difference yet");
                continue;
            }
            if !first_pass && previous.get(&sym) != Some(&(amt, signed_mine)) {
                tracing::info!(symbol = %sym, exchange = %amt, records = %signed_mine, "position differs; acting if the next pass sees the same");
                seen.insert(sym.clone(), (amt, signed_mine));
                continue;
            }
            let msg = format!("{sym}: exchange holds {amt}, records held {signed_mine}; corrected");
            alerts.push(self.alert("position_mismatch", &sym, Severity::Critical, msg, &pass));
            if let Some(p) = mine {
                // Close our record: the exchange no longer holds it (or holds another size).
                let mut p = p.clone();
                p.open = false;
                p.closed_at = Some(now);
                Db::upsert_position(&mut tx, &p).await?;
                let closed = PositionClosed {
                    position_id: p.position_id.clone(),
                    symbol: p.symbol.clone(),
                    side: p.side,
                    max_quantity: p.max_quantity,
                    entry_price: p.entry_price,
                    exit_price: if p.exit_qty > Decimal::ZERO {
                        (p.exit_notional / p.exit_qty).round_dp(8)
                    } else {
                        p.entry_price
                    },
                    realized_pnl: p.realized_pnl,
                    fees: p.fees,
                    net_pnl: p.realized_pnl - p.fees,
                    opened_at: p.opened_at,
                    closed_at: now,
                    reason: "reconciled".into(),
                    signal: p.signal.clone(),
                };
                Db::insert_closed_trade(&mut tx, &closed).await?;
                events.push(self.envelope(
                    Event::PositionClosed(closed),
                    derived_event_id(&[&p.position_id, "closed"]),
                    None,
                ));
                next.remove_position(&sym);
            }
            if !amt.is_zero() {
                let position_id = derived_event_id(&[&sym, "reconciled", &pass]);
                let p = PositionRow {
                    position_id: position_id.clone(),
                    symbol: sym.clone(),
                    side: Self::side_of(amt),
                    open: true,
                    quantity: amt.abs(),
                    entry_price: entry,
                    max_quantity: amt.abs(),
                    realized_pnl: Decimal::ZERO,
                    fees: Decimal::ZERO,
                    exit_qty: Decimal::ZERO,
                    exit_notional: Decimal::ZERO,
                    leverage: 0,
                    intent_id: String::new(),
                    signal: None,
                    opened_at: now,
                    closed_at: None,
                };
                Db::upsert_position(&mut tx, &p).await?;
                next.set_position(
                    &sym,
                    BookPosition {
                        side: p.side,
                        qty: p.quantity,
                        entry_price: entry,
                    },
                );
                events.push(self.envelope(
                    Event::PositionOpened(PositionOpened {
                        position_id: position_id.clone(),
                        symbol: sym.clone(),
                        side: p.side,
                        quantity: p.quantity,
                        entry_price: entry,
                        leverage: 0,
                        intent_id: String::new(),
                        opened_at: now,
                        signal: None,
                    }),
                    derived_event_id(&[&position_id, "opened"]),
                    None,
                ));
            }
        }
        // Book positions without records and without an exchange position are stale.
        let stale: Vec<String> = next
            .positions()
            .keys()
            .filter(|s| !theirs.contains_key(*s))
            .cloned()
            .collect();
        for s in stale {
            next.remove_position(&s);
        }
        events.extend(alerts.iter().cloned());
        self.commit_book(tx, &mut book, next, &events, now).await?;
        *suspects = Some(seen);
        drop(book);
        drop(suspects);
        drop(_serial);
        self.flush_outbox().await?;
        if let Some(alert) = self.restate_if_lost().await? {
            alerts.push(alert);
        }
        Ok(alerts)
    }

    /// Restates the positions on the `positions` stream when it may have lost facts: on the
    /// first pass after a start (Redis may have lost data while execution was down), and
    /// whenever the last fact this process published there is missing from it (Redis lost its
    /// tail: `appendfsync everysec` and a crash), seen here or by the next publish (see
    /// `publish_page`, which wakes a pass at once). Every open position is
    /// published again as a `PositionChanged` with its current size, and every position closed
    /// in the last `RESTATE_CLOSED_MS` as its `PositionClosed` again (same event id). Consumers
    /// apply these per position id, so a restatement of facts they have is a no-op; one they
    /// lost rebuilds their view, and exit-brain protects a position whose opening it never saw.
    async fn restate_if_lost(&self) -> Result<Option<Envelope>, ExecError> {
        // No fill may change a position between the read and the enqueue below: a restated
        // size older than a fact queued after it would end the stream on a stale size. (Lock
        // order: `fills_lock`, then `positions_tail`, as a fill that flushes the outbox.)
        let _serial = self.fills_lock.lock().await;
        let mut state = self.positions_tail.lock().await;
        let key = self.bus.key(Stream::Positions);
        let tail = self.bus.last(&key, 1).await?.pop().map(|e| e.id);
        // Our last fact is missing (newer entries published since the restart do not hide it),
        // or a publish since found the one before it missing.
        let lost = match (&state.lost, state.published.as_deref()) {
            (Some(l), _) => Some(l.clone()),
            (None, Some(o)) => self
                .bus
                .range(&key, o, o, 1)
                .await?
                .is_empty()
                .then(|| o.to_owned()),
            (None, None) => None,
        };
        if state.restated && lost.is_none() {
            return Ok(None);
        }
        let now = self.now();
        let marker = match &lost {
            Some(o) => format!("lost:{o}"),
            None => format!("start:{}", tail.as_deref().unwrap_or("empty")),
        };
        // Closes first: a symbol's open position is newer than its closed ones, so a reader
        // that keeps the last fact per symbol ends on the open one.
        let mut events = Vec::new();
        for c in self.db.closed_since(now - RESTATE_CLOSED_MS).await? {
            let id = derived_event_id(&[&c.position_id, "closed"]);
            events.push(self.envelope(Event::PositionClosed(c), id, None));
        }
        for p in self.db.open_positions().await? {
            let id = derived_event_id(&[&p.position_id, "restated", &marker]);
            events.push(self.position_changed(&p, now, id));
        }
        let alert = lost.as_ref().map(|lost| {
            self.alert(
                "stream_data_lost",
                "positions",
                Severity::Warning,
                format!(
                    "the positions stream no longer holds entry {} that execution published \
                     (it ends at {}): Redis lost data; {} position facts restated",
                    lost,
                    tail.as_deref().unwrap_or("(empty)"),
                    events.len()
                ),
                &marker,
            )
        });
        if let Some(lost) = &lost {
            tracing::warn!(stream = %key, tail = ?tail, published = %lost, facts = events.len(), "positions stream lost facts: restating");
        } else {
            tracing::info!(facts = events.len(), "positions restated after start");
        }
        events.extend(alert.clone());
        let mut tx = self.db.begin().await?;
        Db::enqueue(&mut tx, &events, self.clock.as_ref()).await?;
        tx.commit().await?;
        // The restatement becomes the new tail once flushed.
        *state = PositionsTail {
            published: None,
            lost: None,
            restated: true,
        };
        drop(state);
        drop(_serial);
        self.flush_outbox().await?;
        Ok(alert)
    }
}
