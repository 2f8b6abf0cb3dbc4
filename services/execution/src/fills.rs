//! Fills and order ends from the user data stream (and from polling, the fallback): orders,
//! positions (opened / changed / closed with realized PnL net of fees), closed trades and the
//! risk book are updated in one transaction with the events queued in the outbox; the outbox is
//! then published. Event ids derive from the exchange's trade id, so a replay publishes nothing new.

use qt_events::ids::derived_event_id;
use qt_events::{
    Envelope, Event, OrderFill, OrderKind, PositionChanged, PositionClosed, PositionOpened,
    Severity, Side,
};
use qt_exchange::ws::{AccountUpdateReason, AlgoUpdate, OrderTradeUpdate, UserEvent};
use qt_exchange::{AlgoStatus, Exchange, ExchangeClose, ExecutionType, OrderStatus, OrderType};
use qt_risk::BookFill;
use rust_decimal::Decimal;

use crate::db::{Db, PositionRow};
use crate::error::ExecError;
use crate::order::{Leg, OrderEvent, OrderRecord, OrderState};
use crate::service::Execution;

/// One execution, from the stream or reconstructed by polling.
#[derive(Debug, Clone)]
pub struct FillIn {
    pub symbol: String,
    pub client_order_id: String,
    pub exchange_order_id: String,
    pub side: Side,
    pub kind: OrderKind,
    pub last_qty: Decimal,
    pub last_price: Decimal,
    pub cum_qty: Decimal,
    pub avg_price: Decimal,
    pub order_qty: Decimal,
    pub fee: Decimal,
    pub fee_asset: String,
    pub exchange_realized: Decimal,
    pub trade_id: i64,
    pub trade_time: i64,
    pub reduce_only: bool,
    /// The order has no quantity left (FILLED).
    pub complete: bool,
    /// The exchange placed the order itself (a liquidation, an ADL, a settlement).
    pub exchange_close: Option<ExchangeClose>,
}

fn kind_of(t: OrderType) -> OrderKind {
    match t {
        OrderType::Limit | OrderType::Stop | OrderType::TakeProfit => OrderKind::Limit,
        OrderType::StopMarket => OrderKind::StopMarket,
        OrderType::TakeProfitMarket => OrderKind::TakeProfitMarket,
        OrderType::TrailingStopMarket => OrderKind::TrailingStopMarket,
        OrderType::Market | OrderType::Liquidation | OrderType::Other => OrderKind::Market,
    }
}

/// What closed a position, from the order that closed it.
fn close_reason(row: Option<&OrderRecord>, by_exchange: Option<ExchangeClose>) -> String {
    if let Some(kind) = by_exchange {
        return kind.as_str().into();
    }
    match row {
        None => "external".into(),
        Some(r) => match &r.leg {
            Leg::Stop | Leg::StopClose => "stop".into(),
            Leg::Trailing => "trailing".into(),
            Leg::Entry => "flip".into(),
            Leg::CloseAll(_) => "close_all".into(),
            Leg::Close | Leg::Reduce => r.exit_reason.clone().unwrap_or_else(|| "manual".into()),
            Leg::TakeProfit(_) => "take_profit".into(),
        },
    }
}

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// Applies one user-data-stream event (a funding update reads the funding entries, see
    /// [`funding`](crate::funding)).
    ///
    /// # Errors
    /// A database or Redis failure (the caller logs it; polling and reconciliation heal it).
    pub async fn on_user_event(&self, ev: UserEvent) -> Result<(), ExecError> {
        match ev {
            UserEvent::OrderTradeUpdate(u) => self.on_order_update(&u).await,
            UserEvent::AlgoUpdate(a) => self.on_algo_update(&a).await,
            // The update names no symbol (cross margin): the income history does.
            UserEvent::AccountUpdate(a) if a.data.reason == AccountUpdateReason::FundingFee => {
                self.sync_funding().await.map(|_| ())
            }
            UserEvent::Connected => {
                // Events may have been missed while disconnected: poll live orders.
                self.poll_orders().await
            }
            _ => Ok(()),
        }
    }

    async fn on_order_update(&self, u: &OrderTradeUpdate) -> Result<(), ExecError> {
        let o = &u.order;
        let row = match self.db.order(&o.client_order_id).await? {
            Some(r) => Some(r),
            None => {
                self.db
                    .order_by_exchange_id(&o.order_id.to_string())
                    .await?
            }
        };
        // A liquidation's (or ADL's) fill comes as `CALCULATED`, any other as `TRADE`.
        let fill_report = matches!(
            o.execution_type,
            ExecutionType::Trade | ExecutionType::Calculated
        );
        if fill_report && o.last_filled_qty > Decimal::ZERO {
            let exchange_close =
                ExchangeClose::of_client_order_id(&o.client_order_id)
                    .or((o.order_type == OrderType::Liquidation && row.is_none())
                        .then_some(ExchangeClose::Liquidation));
            let fill = FillIn {
                symbol: o.symbol.clone(),
                client_order_id: o.client_order_id.clone(),
                exchange_order_id: o.order_id.to_string(),
                side: o.side,
                kind: kind_of(o.order_type),
                last_qty: o.last_filled_qty,
                last_price: o.last_filled_price,
                cum_qty: o.cum_filled_qty,
                avg_price: o.avg_price,
                order_qty: o.orig_qty,
                fee: o.commission,
                fee_asset: o.commission_asset.clone().unwrap_or_else(|| "USDT".into()),
                exchange_realized: o.realized_profit,
                trade_id: o.trade_id,
                trade_time: if o.trade_time > 0 {
                    o.trade_time
                } else {
                    u.transaction_time
                },
                reduce_only: o.reduce_only || o.close_position,
                complete: o.status == OrderStatus::Filled,
                exchange_close,
            };
            let symbol = fill.symbol.clone();
            self.apply_fill(row, fill).await?;
            if exchange_close.is_some() {
                self.cancel_orphaned_protection(&symbol).await?;
            }
            return Ok(());
        }
        if let Some(row) = row
            && !row.is_conditional()
            && !row.state.is_final()
            && o.status.ended_unfilled()
        {
            let expired = o.status != OrderStatus::Canceled;
            let mut row = row;
            row.filled_qty = o.cum_filled_qty;
            let envs = self
                .record_ended(
                    None,
                    &row,
                    expired,
                    &o.execution_type.as_str().to_lowercase(),
                )
                .await?;
            self.publish_now(&envs).await?;
        }
        Ok(())
    }

    async fn on_algo_update(&self, a: &AlgoUpdate) -> Result<(), ExecError> {
        let o = &a.order;
        let Some(row) = self.db.order(&o.client_algo_id).await? else {
            return Ok(());
        };
        if row.state.is_final() {
            return Ok(());
        }
        match &o.status {
            s if s.ended_unfired() => {
                let expired = *s != AlgoStatus::Canceled;
                let envs = self
                    .record_ended(None, &row, expired, &s.as_str().to_lowercase())
                    .await?;
                self.publish_now(&envs).await?;
            }
            s if s.fired() => {
                if let Some(actual) = &o.actual_order_id {
                    self.db
                        .mark_triggered(&row.client_order_id, Some(actual), self.now())
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Publishes events at once (order ends); duplicates carry the same id.
    pub(crate) async fn publish_now(&self, envs: &[Envelope]) -> Result<(), ExecError> {
        if envs.is_empty() {
            return Ok(());
        }
        self.bus.publish_all(envs).await?;
        log_facts(envs);
        Ok(())
    }

    /// Publishes what the outbox holds, oldest first, and removes it.
    ///
    /// # Errors
    /// A database or Redis failure: the events stay queued.
    pub async fn flush_outbox(&self) -> Result<usize, ExecError> {
        const PAGE: i64 = 256;
        let mut total = 0;
        loop {
            let envs = self.db.outbox(crate::service::SERVICE, PAGE).await?;
            if envs.is_empty() {
                return Ok(total);
            }
            let last_page = i64::try_from(envs.len()).unwrap_or(i64::MAX) < PAGE;
            self.publish_page(&envs).await?;
            log_facts(&envs);
            let ids: Vec<String> = envs.iter().map(|e| e.id.clone()).collect();
            self.db.dequeue(&ids).await?;
            total += ids.len();
            if last_page {
                return Ok(total);
            }
        }
    }

    /// Publishes one outbox page. A page with position facts first checks, in the same round
    /// trip, that the last fact published before it is still on the stream: when Redis lost
    /// it, the loss is noted and a reconciliation woken to restate the positions; otherwise
    /// the facts published after a Redis restart would hide the loss from `restate_if_lost`.
    async fn publish_page(&self, envs: &[Envelope]) -> Result<Vec<String>, ExecError> {
        let positions = qt_events::Stream::Positions;
        if !envs.iter().any(|e| e.event.stream() == positions) {
            return Ok(self.bus.publish_all(envs).await?);
        }
        let mut tail = self.positions_tail.lock().await;
        let entry_ids = match tail.published.clone() {
            Some(prior) => {
                let key = self.bus.key(positions);
                let (present, ids) = self.bus.publish_all_after(envs, &key, &prior).await?;
                if !present && tail.lost.is_none() {
                    tracing::warn!(stream = %key, published = %prior, "positions stream lost facts: restating soon");
                    tail.lost = Some(prior);
                    self.reconcile_soon.notify_one();
                }
                ids
            }
            None => self.bus.publish_all(envs).await?,
        };
        if let Some(last) = envs
            .iter()
            .zip(&entry_ids)
            .rev()
            .find(|(e, _)| e.event.stream() == positions)
            .map(|(_, id)| id.clone())
        {
            tail.published = Some(last);
        }
        Ok(entry_ids)
    }

    /// Applies one fill: once per (symbol, trade id) and never below the order's recorded
    /// cumulative quantity, whichever path (stream or poll) reports it first.
    ///
    /// # Errors
    /// A database or Redis failure.
    pub async fn apply_fill(&self, row: Option<OrderRecord>, f: FillIn) -> Result<(), ExecError> {
        let _serial = self.fills_lock.lock().await;
        // Re-read under the lock: another path may have applied it meanwhile.
        let row = match row {
            Some(r) => self.db.order(&r.client_order_id).await?,
            None => None,
        };
        if let Some(r) = &row
            && !r.is_conditional()
            && f.cum_qty > Decimal::ZERO
            && f.cum_qty <= r.filled_qty
        {
            return Ok(());
        }
        let now = self.now();
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        let mut tx = self.db.begin().await?;
        let coid = row
            .as_ref()
            .map_or(f.client_order_id.clone(), |r| r.client_order_id.clone());
        let fresh = Db::insert_fill(
            &mut tx,
            &f.symbol,
            f.trade_id,
            &coid,
            f.side,
            f.last_qty,
            f.last_price,
            f.fee,
            &f.fee_asset,
            f.exchange_realized,
            f.trade_time,
        )
        .await?;
        if !fresh {
            return Ok(());
        }
        let intent_id = row.as_ref().map(|r| r.intent_id.clone());
        if let Some(r) = &row {
            let event = if r.is_conditional() {
                // The fill belongs to the order the conditional one created.
                OrderEvent::TriggeredFill {
                    complete: f.complete,
                }
            } else {
                let ordered = r.spec.quantity();
                OrderEvent::Filled {
                    complete: f.complete || (ordered > Decimal::ZERO && f.cum_qty >= ordered),
                }
            };
            Db::set_filled(
                &mut tx,
                &r.client_order_id,
                f.cum_qty,
                f.avg_price,
                event,
                now,
            )
            .await?;
        }
        // The book's position before the fill, to know what the fill did.
        let before = next.positions().get(&f.symbol).cloned();
        let outcome = next.on_fill(
            &BookFill {
                intent_id: intent_id.clone(),
                symbol: f.symbol.clone(),
                side: f.side,
                qty: f.last_qty,
                price: f.last_price,
                fee: f.fee,
            },
            f.trade_time.max(now),
        );
        next.on_price(&f.symbol, f.last_price);
        let after = next.positions().get(&f.symbol).cloned();

        let order_fill = OrderFill {
            intent_id: intent_id.clone().unwrap_or_default(),
            client_order_id: coid.clone(),
            exchange_order_id: Some(f.exchange_order_id.clone()),
            symbol: f.symbol.clone(),
            side: f.side,
            kind: row.as_ref().map_or(f.kind, |r| r.spec.kind()),
            last_qty: f.last_qty,
            last_price: f.last_price,
            cumulative_qty: f.cum_qty,
            avg_price: f.avg_price,
            order_qty: if f.order_qty > Decimal::ZERO {
                f.order_qty
            } else {
                row.as_ref().map_or(f.cum_qty, |r| r.spec.quantity())
            },
            fee: f.fee,
            fee_asset: f.fee_asset.clone(),
            realized_pnl: f.exchange_realized,
            trade_id: f.trade_id,
            reduce_only: f.reduce_only,
            trade_time: f.trade_time,
        };
        let trade = f.trade_id.to_string();
        let fill_id = derived_event_id(&[&f.symbol, &trade, "fill"]);
        let mut events = vec![self.envelope(
            if f.complete {
                Event::OrderFilled(order_fill)
            } else {
                Event::OrderPartiallyFilled(order_fill)
            },
            fill_id,
            None,
        )];
        // A fill can overtake the REST answer: the exchange has the order, so its acceptance
        // goes first on the stream (the handler's later copy has the same id and is dropped).
        if let Some(r) = &row
            && r.state == OrderState::Sending
        {
            let mut acked = r.clone();
            acked.exchange_order_id = Some(f.exchange_order_id.clone());
            events.insert(0, self.accepted_event(None, &acked));
        }

        let mut pos = Db::open_position(&mut tx, &f.symbol).await?;
        let ts = f.trade_time.max(0);
        // Part of the fill that closed the existing position, and what is left to open.
        let closing = before.is_some() && outcome.closed_qty > Decimal::ZERO;
        if closing && let Some(p) = pos.as_mut() {
            let share = if f.last_qty > Decimal::ZERO {
                outcome.closed_qty / f.last_qty
            } else {
                Decimal::ONE
            };
            p.realized_pnl += outcome.realized_pnl;
            p.fees += f.fee * share;
            p.exit_qty += outcome.closed_qty;
            p.exit_notional += outcome.closed_qty * f.last_price;
            if outcome.position_closed {
                p.open = false;
                p.quantity = Decimal::ZERO;
                p.closed_at = Some(ts);
                let exit_price = if p.exit_qty > Decimal::ZERO {
                    p.exit_notional / p.exit_qty
                } else {
                    f.last_price
                };
                let closed = PositionClosed {
                    position_id: p.position_id.clone(),
                    symbol: p.symbol.clone(),
                    side: p.side,
                    max_quantity: p.max_quantity,
                    entry_price: p.entry_price,
                    exit_price: exit_price.round_dp(8),
                    realized_pnl: p.realized_pnl,
                    fees: p.fees,
                    net_pnl: p.realized_pnl - p.fees,
                    opened_at: p.opened_at,
                    closed_at: ts,
                    reason: close_reason(row.as_ref(), f.exchange_close),
                    signal: p.signal.clone(),
                };
                Db::insert_closed_trade(&mut tx, &closed).await?;
                events.push(self.envelope(
                    Event::PositionClosed(closed),
                    derived_event_id(&[&p.position_id, "closed"]),
                    None,
                ));
            } else {
                p.quantity = after.as_ref().map_or(Decimal::ZERO, |a| a.qty);
                events.push(self.changed(p, ts, &trade));
            }
            Db::upsert_position(&mut tx, p).await?;
        }
        let opened_qty = f.last_qty
            - if closing {
                outcome.closed_qty
            } else {
                Decimal::ZERO
            };
        if opened_qty > Decimal::ZERO
            && let Some(a) = &after
        {
            let share = if f.last_qty > Decimal::ZERO {
                opened_qty / f.last_qty
            } else {
                Decimal::ONE
            };
            match pos.filter(|p| p.open && !closing) {
                Some(mut p) => {
                    p.quantity = a.qty;
                    p.entry_price = a.entry_price;
                    p.max_quantity = p.max_quantity.max(a.qty);
                    p.fees += f.fee * share;
                    Db::upsert_position(&mut tx, &p).await?;
                    events.push(self.changed(&p, ts, &trade));
                }
                None => {
                    let position_id = derived_event_id(&[&f.symbol, &trade, "position"]);
                    let p = PositionRow {
                        position_id: position_id.clone(),
                        symbol: f.symbol.clone(),
                        side: a.side,
                        open: true,
                        quantity: a.qty,
                        entry_price: a.entry_price,
                        max_quantity: a.qty,
                        realized_pnl: Decimal::ZERO,
                        fees: f.fee * share,
                        exit_qty: Decimal::ZERO,
                        exit_notional: Decimal::ZERO,
                        leverage: row.as_ref().map_or(0, OrderRecord::leverage),
                        intent_id: intent_id.clone().unwrap_or_default(),
                        signal: row.as_ref().and_then(|r| r.signal().cloned()),
                        opened_at: ts,
                        closed_at: None,
                    };
                    Db::upsert_position(&mut tx, &p).await?;
                    events.push(self.envelope(
                        Event::PositionOpened(PositionOpened {
                            position_id: position_id.clone(),
                            symbol: p.symbol.clone(),
                            side: p.side,
                            quantity: p.quantity,
                            entry_price: p.entry_price,
                            leverage: p.leverage,
                            intent_id: p.intent_id.clone(),
                            opened_at: ts,
                            signal: p.signal.clone(),
                        }),
                        derived_event_id(&[&position_id, "opened"]),
                        None,
                    ));
                }
            }
        }
        if let Some(kind) = f.exchange_close {
            events.push(self.exchange_close_alert(kind, &f, after.as_ref().map(|a| a.qty)));
        }
        self.continue_trace(intent_id.as_deref(), &mut events);
        self.guard.observe(&mut next, now);
        self.commit_book(tx, &mut book, next, &events, now).await?;
        drop(book);
        metrics::counter!("execution_fills_total").increment(1);
        self.flush_outbox().await?;
        Ok(())
    }

    /// The alert of a fill of an order the exchange placed itself: critical for a liquidation,
    /// a warning for an ADL or a settlement; `left` is the position's size after it.
    fn exchange_close_alert(
        &self,
        kind: ExchangeClose,
        f: &FillIn,
        left: Option<Decimal>,
    ) -> Envelope {
        let (rule, severity, what) = match kind {
            ExchangeClose::Liquidation => ("position_liquidated", Severity::Critical, "liquidated"),
            ExchangeClose::Adl => (
                "position_auto_deleveraged",
                Severity::Warning,
                "auto-deleveraged",
            ),
            ExchangeClose::Settlement => ("position_settled", Severity::Warning, "settled"),
        };
        let left = left.unwrap_or(Decimal::ZERO);
        self.alert(
            rule,
            &f.symbol,
            severity,
            format!(
                "the exchange {what} {} {} at {} (order {}); {}",
                f.last_qty,
                f.symbol,
                f.last_price,
                f.client_order_id,
                if left.is_zero() {
                    "the position is closed and its protection cancelled".to_string()
                } else {
                    format!("{left} remains")
                }
            ),
            &f.trade_id.to_string(),
        )
    }

    /// Cancels the live conditional orders (stop, take-profits, trailing) and reduce-only
    /// orders of `symbol` when execution holds no open position there any more: after the
    /// exchange closed it, they protect nothing and would open a position if they fired.
    /// Idempotent (an order already ended is skipped).
    ///
    /// # Errors
    /// A database, exchange or Redis failure; reconciliation finds what is left.
    pub(crate) async fn cancel_orphaned_protection(&self, symbol: &str) -> Result<(), ExecError> {
        if self
            .db
            .open_positions()
            .await?
            .iter()
            .any(|p| p.symbol == symbol)
        {
            return Ok(());
        }
        for row in self.db.live_orders().await? {
            if row.symbol != symbol
                || row.state == OrderState::Sending
                || !(row.is_conditional() || row.spec.plain().is_some_and(|p| p.reduce_only))
            {
                continue;
            }
            let envs = self.cancel_row(None, &row, "orphaned").await?;
            self.publish_now(&envs).await?;
        }
        Ok(())
    }

    /// A fill changed position `p`: its `PositionChanged`, id derived from the trade.
    fn changed(&self, p: &PositionRow, ts: i64, trade: &str) -> Envelope {
        self.position_changed(p, ts, derived_event_id(&[&p.position_id, trade, "changed"]))
    }

    /// Position `p` as a `PositionChanged` fact with event id `id`.
    pub(crate) fn position_changed(&self, p: &PositionRow, ts: i64, id: String) -> Envelope {
        self.envelope(
            Event::PositionChanged(PositionChanged {
                position_id: p.position_id.clone(),
                symbol: p.symbol.clone(),
                side: p.side,
                quantity: p.quantity,
                entry_price: p.entry_price,
                realized_pnl: p.realized_pnl,
                fees: p.fees,
                ts,
            }),
            id,
            None,
        )
    }

    /// The fallback for missed stream events: queries every live plain order and applies what
    /// the exchange executed beyond what is recorded (one synthetic fill at the implied price;
    /// the fee is not known on this path and is recorded as zero), and the order's end.
    ///
    /// # Errors
    /// A database or Redis failure.
    pub async fn poll_orders(&self) -> Result<(), ExecError> {
        for row in self.db.live_orders().await? {
            if row.is_conditional() || row.state == OrderState::Sending {
                continue;
            }
            let o = match self
                .exchange
                .query_order(&row.symbol, &row.client_order_id)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(client_order_id = %row.client_order_id, error = %e,
                        "poll: cannot query order");
                    continue;
                }
            };
            if o.executed_qty > row.filled_qty {
                let diff = o.executed_qty - row.filled_qty;
                let done_quote = row.filled_qty * row.avg_price;
                let price = if o.cum_quote > done_quote {
                    (o.cum_quote - done_quote) / diff
                } else {
                    o.avg_price
                };
                // A synthetic, negative trade id that cannot collide with the exchange's.
                let step = (o.executed_qty * Decimal::from(1_000_000))
                    .trunc()
                    .to_string()
                    .parse::<i64>()
                    .unwrap_or(0);
                let trade_id = -(o
                    .order_id
                    .saturating_mul(1_000_000)
                    .saturating_add(step % 1_000_000))
                .abs();
                let fill = FillIn {
                    symbol: row.symbol.clone(),
                    client_order_id: row.client_order_id.clone(),
                    exchange_order_id: o.order_id.to_string(),
                    side: o.side,
                    kind: row.spec.kind(),
                    last_qty: diff,
                    last_price: price.round_dp(8),
                    cum_qty: o.executed_qty,
                    avg_price: o.avg_price,
                    order_qty: o.orig_qty,
                    fee: Decimal::ZERO,
                    fee_asset: "USDT".into(),
                    exchange_realized: Decimal::ZERO,
                    trade_id,
                    trade_time: o.update_time,
                    reduce_only: o.reduce_only || o.close_position,
                    complete: o.status == OrderStatus::Filled,
                    exchange_close: None,
                };
                self.apply_fill(Some(row.clone()), fill).await?;
            }
            if o.status.ended_unfilled() {
                let mut row = row;
                row.filled_qty = o.executed_qty;
                let envs = self
                    .record_ended(None, &row, o.status != OrderStatus::Canceled, "polled")
                    .await?;
                self.publish_now(&envs).await?;
            }
        }
        Ok(())
    }
}

/// One info line per order or position fact, so a person following the log sees orders, fills
/// and exits (a redelivery may log a fact twice; the stream holds it once, under one id).
pub(crate) fn log_facts(envs: &[Envelope]) {
    for e in envs {
        match &e.event {
            Event::OrderAccepted(o) => tracing::info!(symbol = %o.symbol, side = ?o.side,
                kind = ?o.kind, quantity = %o.quantity, trigger = ?o.trigger_price,
                reduce_only = o.reduce_only, client_order_id = %o.client_order_id,
                "order accepted"),
            Event::OrderRejected(o) => tracing::info!(symbol = %o.symbol, reason = ?o.reason,
                message = %o.message, intent_id = %o.intent_id, "order rejected"),
            Event::OrderPartiallyFilled(f) | Event::OrderFilled(f) => tracing::info!(
                symbol = %f.symbol, side = ?f.side, kind = ?f.kind, qty = %f.last_qty,
                price = %f.last_price, cumulative = %f.cumulative_qty, fee = %f.fee,
                client_order_id = %f.client_order_id, "{}", e.type_name()),
            Event::PositionOpened(p) => tracing::info!(symbol = %p.symbol, side = ?p.side,
                quantity = %p.quantity, entry = %p.entry_price, "position opened"),
            Event::PositionClosed(p) => tracing::info!(symbol = %p.symbol, side = ?p.side,
                entry = %p.entry_price, exit = %p.exit_price, net_pnl = %p.net_pnl,
                fees = %p.fees, reason = %p.reason, "position closed"),
            Event::AlertRaised(a) => tracing::warn!(rule = %a.rule, key = %a.key,
                message = %a.message, "alert raised"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{Conditional, OrderSpec};

    fn row(leg: &str, spec: OrderSpec, reason: Option<&str>) -> OrderRecord {
        OrderRecord {
            client_order_id: "c".into(),
            intent_id: "i".into(),
            leg: Leg::parse(leg),
            symbol: "BTCUSDT".into(),
            side: Side::Sell,
            spec,
            state: OrderState::Acked,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            exit_reason: reason.map(str::to_owned),
            rejection: None,
            sent_at: 0,
            updated_at: 0,
        }
    }

    fn conditional(c: Conditional) -> OrderSpec {
        OrderSpec::Conditional(c)
    }

    #[test]
    fn close_reason_names_the_order_that_closed_the_position() {
        let d = Decimal::ONE;
        let stop = conditional(Conditional::Stop {
            trigger: d,
            working_type: Default::default(),
        });
        let tp = conditional(Conditional::TakeProfit {
            trigger: d,
            quantity: d,
        });
        let trailing = conditional(Conditional::Trailing {
            activation: d,
            callback_rate: d,
            quantity: d,
        });
        let close = || OrderSpec::Close { quantity: d };
        assert_eq!(close_reason(Some(&row("stop", stop, None)), None), "stop");
        assert_eq!(
            close_reason(Some(&row("tp2", tp, None)), None),
            "take_profit"
        );
        assert_eq!(
            close_reason(Some(&row("trailing", trailing, None)), None),
            "trailing"
        );
        assert_eq!(
            close_reason(Some(&row("close", close(), Some("time_stop"))), None),
            "time_stop"
        );
        assert_eq!(
            close_reason(Some(&row("close_all:BTCUSDT", close(), None)), None),
            "close_all"
        );
        assert_eq!(close_reason(None, None), "external");
        assert_eq!(
            close_reason(None, Some(ExchangeClose::Liquidation)),
            "liquidation"
        );
        assert_eq!(close_reason(None, Some(ExchangeClose::Adl)), "adl");
        assert_eq!(
            close_reason(None, Some(ExchangeClose::Settlement)),
            "settlement"
        );
    }
}
