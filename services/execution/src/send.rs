//! The order protocol for a recorded order: one send loop for plain and conditional orders
//! (`/fapi/v1/order`, `/fapi/v1/algoOrder`), unknown outcomes (timeout, 5xx, -1007) settled by
//! query — adopted if the exchange has the order, else sent again with the same id once the
//! recvWindow fence has passed, the intent waiting pending meanwhile while the ones behind it
//! are handled — a redelivered intent resumed from its record, and an order's end (accepted,
//! rejected, cancelled, expired) recorded with the risk book.

use qt_events::{Envelope, RejectReason};
use qt_exchange::{
    AlgoOrderType, ErrorClass, Exchange, ExchangeError, Fence, NewAlgoOrder, NewOrder, Orders,
    Refusal, Settled, check_unknown_algo_order, check_unknown_order,
};
use rust_decimal::Decimal;

use crate::db::Db;
use crate::error::ExecError;
use crate::facts::reject_reason;
use crate::order::{
    Conditional, OrderEvent, OrderRecord, OrderSpec, OrderState, Pricing, Rejection,
};
use crate::service::Execution;

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// Records a new order, durably, before anything else is done with it; when its client
    /// order id was recorded before (a redelivered intent), returns that record instead.
    pub(crate) async fn record_new(
        &self,
        row: &OrderRecord,
    ) -> Result<Option<OrderRecord>, ExecError> {
        if self.db.record_order(row).await? {
            return Ok(None);
        }
        match self.db.order(&row.client_order_id).await? {
            Some(known) => Ok(Some(known)),
            None => Err(ExecError::unavailable(format!(
                "order {} neither new nor recorded",
                row.client_order_id
            ))),
        }
    }

    /// Places a recorded SENDING order on its endpoint; its exchange id.
    pub(crate) async fn submit(&self, row: &OrderRecord) -> Result<String, ExchangeError> {
        match Request::of(row)? {
            Request::Plain(o) => Ok(self.exchange.new_order(&o).await?.order_id.to_string()),
            Request::Conditional(a) => {
                Ok(self.exchange.new_algo_order(&a).await?.algo_id.to_string())
            }
        }
    }

    /// Sends a recorded SENDING order, plain or conditional: the one send loop. A definite
    /// refusal is recorded REJECTED, a retryable failure leaves the intent pending, and an
    /// unknown outcome is settled by query (`settle_unknown`) and, once proven never executed,
    /// sent again with the same id (at most `max_sends` sends in all).
    pub(crate) async fn send(
        &self,
        env: &Envelope,
        row: OrderRecord,
    ) -> Result<Vec<Envelope>, ExecError> {
        let endpoint = if row.is_conditional() {
            "algo"
        } else {
            "plain"
        };
        for attempt in 0..self.settings.max_sends.max(1) {
            if attempt > 0 {
                let at = self.exchange.server_now_ms();
                self.db.mark_resent(&row.client_order_id, at).await?;
            }
            metrics::counter!("execution_orders_sent_total", "endpoint" => endpoint).increment(1);
            match self.submit(&row).await {
                Ok(id) => return self.acked(env, &row, &id).await,
                Err(e) => match e.class() {
                    ErrorClass::Rejected => return self.exchange_rejected(env, &row, &e).await,
                    ErrorClass::Retryable => return Err(ExecError::unavailable(e)),
                    ErrorClass::Unknown => {
                        if let Some(id) = self.settle_unknown(&row, &e).await? {
                            return self.acked(env, &row, &id).await;
                        }
                    }
                },
            }
        }
        Err(ExecError::Unavailable(format!(
            "{endpoint} order {} still unknown after {} sends",
            row.client_order_id, self.settings.max_sends
        )))
    }

    /// After a request with an unknown outcome: the exchange id if the order reached the
    /// exchange, `None` once it is proven never to have executed (the caller resends it with
    /// the same id). While that cannot be known yet (the request may still arrive until its
    /// receive window closes) the intent is put off until then (`ExecError::Later`): its
    /// record stays SENDING, and the consumer handles the intents behind it meanwhile.
    pub(crate) async fn settle_unknown(
        &self,
        row: &OrderRecord,
        e: &ExchangeError,
    ) -> Result<Option<String>, ExecError> {
        tracing::warn!(client_order_id = %row.client_order_id, error = %e,
            "order outcome unknown; settling it by query");
        let fence = e.fence().unwrap_or(Fence {
            timestamp_ms: self.exchange.server_now_ms(),
            recv_window_ms: self.recv_window_ms,
        });
        self.settle(row, fence).await
    }

    /// One look at an order whose request may or may not have reached the exchange (see
    /// [`settle_unknown`](Self::settle_unknown)).
    pub(crate) async fn settle(
        &self,
        row: &OrderRecord,
        fence: Fence,
    ) -> Result<Option<String>, ExecError> {
        let coid = &row.client_order_id;
        let margin = self.resolve_margin_ms;
        let settled = if row.is_conditional() {
            check_unknown_algo_order(&self.exchange, coid, fence, margin)
                .await
                .map(|s| s.map(|a| a.algo_id.to_string()))
        } else {
            check_unknown_order(&self.exchange, &row.symbol, coid, fence, margin)
                .await
                .map(|s| s.map(|o| o.order_id.to_string()))
        }?;
        match settled {
            Settled::Found(id) => Ok(Some(id)),
            Settled::NeverExecuted => Ok(None),
            // Asking again before the window closes cannot settle it: the intent is read
            // again then, and the ones behind it are handled meanwhile (no retries in place,
            // which would hold them up, after a restart most of all).
            Settled::Undecided { until_ms } => {
                let window = i64::try_from(self.recv_window_ms)
                    .unwrap_or(i64::MAX)
                    .max(50);
                let wait_ms = until_ms
                    .saturating_sub(self.exchange.server_now_ms())
                    .clamp(50, window);
                Err(ExecError::Later {
                    reason: format!(
                        "order {coid} not on the exchange yet; its request may still arrive \
                         until {until_ms}"
                    ),
                    retry_in: std::time::Duration::from_millis(
                        u64::try_from(wait_ms).unwrap_or(50),
                    ),
                })
            }
        }
    }

    /// Resumes an intent whose order is already recorded (a redelivery, or a retry).
    pub(crate) async fn resume(
        &self,
        env: &Envelope,
        row: OrderRecord,
    ) -> Result<Vec<Envelope>, ExecError> {
        match row.state {
            OrderState::Sending => {
                // The request may have left before a crash (or its answer was lost): settle
                // it by query.
                let fence = Fence {
                    timestamp_ms: row.sent_at,
                    recv_window_ms: self.recv_window_ms,
                };
                match self.settle(&row, fence).await? {
                    Some(id) => {
                        let mut out = self.acked(env, &row, &id).await?;
                        if row.is_conditional() && self.replaced_since(&row).await? {
                            out.extend(self.cancel_row(Some(env), &row, "replaced").await?);
                        }
                        Ok(out)
                    }
                    None => {
                        // Never executed: sent again, within the budget like a first send.
                        let class = Request::of(&row).map_or(Orders::None, |r| r.class());
                        if let Some(wait) = self.budget_wait(class) {
                            metrics::counter!("execution_intents_deferred_total").increment(1);
                            return Err(ExecError::Later {
                                reason: format!(
                                    "order {} is to be sent again; the order-rate budget for \
                                     {class:?} orders is used up for another {} ms",
                                    row.client_order_id,
                                    wait.as_millis()
                                ),
                                retry_in: wait,
                            });
                        }
                        let at = self.exchange.server_now_ms();
                        self.db.mark_resent(&row.client_order_id, at).await?;
                        let mut row = row;
                        row.sent_at = at;
                        self.send(env, row).await
                    }
                }
            }
            OrderState::Rejected => Ok(vec![self.rejected_event(env, &row)]),
            _ => Ok(vec![self.accepted_event(Some(env), &row)]),
        }
    }

    pub(crate) async fn acked(
        &self,
        env: &Envelope,
        row: &OrderRecord,
        exchange_id: &str,
    ) -> Result<Vec<Envelope>, ExecError> {
        let mut row = row.clone();
        row.exchange_order_id = Some(exchange_id.to_owned());
        let accepted = self.accepted_event(Some(env), &row);
        // Published before the record leaves SENDING: a fill processed after that point can
        // never reach `qt:orders` ahead of the acceptance (one processed before it carries the
        // acceptance itself). The same event, same id, also goes out with the intent's ack.
        self.publish_now(std::slice::from_ref(&accepted)).await?;
        self.db
            .mark_acked(&row.client_order_id, exchange_id, self.now())
            .await?;
        Ok(vec![accepted])
    }

    pub(crate) async fn exchange_rejected(
        &self,
        env: &Envelope,
        row: &OrderRecord,
        e: &ExchangeError,
    ) -> Result<Vec<Envelope>, ExecError> {
        let rejection = Rejection {
            reason: reject_reason(e),
            message: e.to_string(),
            exchange_code: e.code(),
        };
        self.record_end(row, OrderEvent::Rejected, Some(&rejection))
            .await?;
        let mut row = row.clone();
        row.state = OrderState::Rejected;
        row.rejection = Some(rejection);
        Ok(vec![self.rejected_event(env, &row)])
    }

    /// A SENDING order that never executed and that nobody will resend: REJECTED, its
    /// in-flight reservation released.
    pub(crate) async fn record_abandoned(&self, row: &OrderRecord) -> Result<(), ExecError> {
        let rejection = Rejection {
            reason: RejectReason::Other,
            message: "abandoned: never reached the exchange".to_owned(),
            exchange_code: None,
        };
        self.record_end(row, OrderEvent::Rejected, Some(&rejection))
            .await?;
        Ok(())
    }

    /// Records an order's end without (further) fills (`Rejected` or `Ended`) and releases its
    /// in-flight reservation, with the book, in one transaction; false, and nothing changed,
    /// when the transition table refuses it (the order ended otherwise meanwhile).
    async fn record_end(
        &self,
        row: &OrderRecord,
        event: OrderEvent,
        rejection: Option<&Rejection>,
    ) -> Result<bool, ExecError> {
        let now = self.now();
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        next.on_ended(&row.intent_id);
        let mut tx = self.db.begin().await?;
        if !Db::end_order(&mut tx, &row.client_order_id, event, rejection, now).await? {
            return Ok(false);
        }
        self.commit_book(tx, &mut book, next, &[], now).await?;
        Ok(true)
    }

    /// Cancels a recorded order on the exchange and records the end.
    pub(crate) async fn cancel_row(
        &self,
        cause: Option<&Envelope>,
        row: &OrderRecord,
        reason: &str,
    ) -> Result<Vec<Envelope>, ExecError> {
        let r = if row.is_conditional() {
            self.exchange.cancel_algo_order(&row.client_order_id).await
        } else {
            self.exchange
                .cancel_order(&row.symbol, &row.client_order_id)
                .await
                .map(|_| ())
        };
        match r {
            Ok(()) => {}
            // Unknown to the exchange (already ended): the stream or reconciliation tells how.
            Err(e) if e.class() == ErrorClass::Rejected => {
                tracing::info!(client_order_id = %row.client_order_id, error = %e,
                    "cancel refused; the order had already ended");
                return Ok(Vec::new());
            }
            Err(e) => return Err(ExecError::unavailable(e)),
        }
        self.record_ended(cause, row, false, reason).await
    }

    /// Records that an order ended without further fills and returns its event (none when it
    /// had ended otherwise meanwhile).
    pub(crate) async fn record_ended(
        &self,
        cause: Option<&Envelope>,
        row: &OrderRecord,
        expired: bool,
        reason: &str,
    ) -> Result<Vec<Envelope>, ExecError> {
        let event = OrderEvent::Ended { expired };
        if !self.record_end(row, event, None).await? {
            // Ended already (the user data stream may tell before the cancel's answer does):
            // the same fact, same id, when it ended the same way; nothing when it ended
            // otherwise (filled).
            let now = self.db.order(&row.client_order_id).await?.map(|r| r.state);
            if now.is_none() || now != row.state.after(event) {
                return Ok(Vec::new());
            }
        }
        Ok(vec![self.ended_event(cause, row, expired, reason)])
    }
}

/// The request that places a recorded order.
pub(crate) enum Request {
    Plain(NewOrder),
    Conditional(NewAlgoOrder),
}

impl Request {
    /// The request for `row`'s spec (a refused leg has none).
    pub(crate) fn of(row: &OrderRecord) -> Result<Self, ExchangeError> {
        let (symbol, side, coid) = (row.symbol.clone(), row.side, row.client_order_id.clone());
        Ok(match &row.spec {
            OrderSpec::Plain(p) => {
                let o = match p.pricing {
                    Pricing::Market => NewOrder::market(symbol, side, p.quantity, coid),
                    Pricing::Limit { price } => {
                        NewOrder::limit(symbol, side, p.quantity, price, coid)
                    }
                }
                .reduce_only(p.reduce_only);
                Self::Plain(match p.reference_price {
                    Some(r) if r > Decimal::ZERO => o.with_reference_price(r),
                    _ => o,
                })
            }
            OrderSpec::Close { quantity } => {
                Self::Plain(NewOrder::market(symbol, side, *quantity, coid).reduce_only(true))
            }
            OrderSpec::Conditional(c) => {
                let trigger = row.spec.trigger_price().unwrap_or_default();
                let mut a = NewAlgoOrder::stop_close_position(symbol, side, trigger, coid);
                match *c {
                    Conditional::Stop { working_type, .. } => a.working_type = working_type,
                    Conditional::TakeProfit { quantity, .. } => {
                        a.order_type = AlgoOrderType::TakeProfitMarket;
                        a.close_position = false;
                        a.reduce_only = true;
                        a.quantity = Some(quantity);
                    }
                    Conditional::Trailing {
                        activation,
                        callback_rate,
                        quantity,
                    } => {
                        a.order_type = AlgoOrderType::TrailingStopMarket;
                        a.close_position = false;
                        a.reduce_only = true;
                        a.quantity = Some(quantity);
                        a.trigger_price = None;
                        a.activate_price = Some(activation);
                        a.callback_rate = Some(callback_rate);
                    }
                }
                Self::Conditional(a)
            }
            OrderSpec::Refused => {
                return Err(ExchangeError::Refused(Refusal::InvalidOrder(format!(
                    "{} was refused before an order was built",
                    row.client_order_id
                ))));
            }
        })
    }

    /// The order-rate budget class it counts in.
    pub(crate) fn class(&self) -> Orders {
        match self {
            Self::Plain(o) => Orders::of_order(o),
            Self::Conditional(a) => Orders::of_algo(a),
        }
    }
}
