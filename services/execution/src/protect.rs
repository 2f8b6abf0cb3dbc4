//! `ProtectPosition`: one conditional order per leg (stop, take-profits, trailing) on the algo
//! endpoint. Legs that a later protect intent of the symbol names again are not placed but
//! answered `SUPERSEDED` (except the stop of a symbol with no stop placed); a newly placed leg
//! replaces (cancels) the older live one of the same name; a stop the price is already through
//! closes the position at market.

use std::collections::HashSet;

use qt_events::ids::client_order_id;
use qt_events::{Envelope, Event, ProtectPosition, RejectReason, Stream};
use qt_exchange::{Exchange, Orders};
use rust_decimal::Decimal;

use crate::admission::Throttled;
use crate::error::ExecError;
use crate::order::{Conditional, Leg, OrderRecord, OrderSpec, OrderState};
use crate::send::Request;
use crate::service::Execution;

/// How many later intents a protect intent looks at for ones that supersede its legs.
pub(crate) const LOOKAHEAD: usize = 1000;

impl<E: Exchange + Clone + 'static> Execution<E> {
    // ---- conditional orders -------------------------------------------------------------

    /// The legs that a `ProtectPosition` of `symbol` after `entry_id` on `qt:intents` names.
    ///
    /// A protect intent states the whole wanted state of the legs it names, so an earlier one's
    /// legs would only be placed to be replaced a moment later; and when the later intent was
    /// handled first (the earlier one failed transiently and came back), placing them would
    /// replace newer legs with older ones. A burst of position changes (adds filling one after
    /// another) thus costs one placement per leg, not one per change.
    pub(crate) async fn superseded_legs(
        &self,
        entry_id: &str,
        symbol: &str,
    ) -> Result<HashSet<String>, ExecError> {
        let key = self.bus.key(Stream::Intents);
        let later = self
            .bus
            .range(&key, &format!("({entry_id}"), "+", LOOKAHEAD)
            .await?;
        let mut legs = HashSet::new();
        for entry in &later {
            let field = |name: &[u8]| {
                entry
                    .field_pairs()
                    .find_map(|(k, v)| (k == name).then_some(v))
            };
            if field(b"type") != Some(b"ProtectPosition".as_slice())
                || field(b"sym") != Some(symbol.as_bytes())
            {
                continue;
            }
            // An entry that does not decode is the consumer's to dead-letter, not a protect.
            if let Ok(Envelope {
                event: Event::ProtectPosition(p),
                ..
            }) = Envelope::from_fields(entry.field_pairs())
            {
                legs.extend(p.leg_names().map(str::to_owned));
            }
        }
        Ok(legs)
    }

    /// Whether `symbol` has a stop placed (or being placed) by a protect intent.
    pub(crate) async fn has_live_stop(&self, symbol: &str) -> Result<bool, ExecError> {
        Ok(self.db.has_live_stop(symbol).await?)
    }

    /// Places the legs of a protect intent, except those in `superseded` (recorded and
    /// answered as refused with [`RejectReason::Superseded`]).
    pub(crate) async fn protect(
        &self,
        env: &Envelope,
        p: &ProtectPosition,
        superseded: &HashSet<String>,
    ) -> Result<Vec<Envelope>, ExecError> {
        let now = self.now();
        let leg = |leg: Leg, order: Conditional| OrderRecord {
            client_order_id: client_order_id(&p.intent_id, &leg.name()),
            intent_id: p.intent_id.clone(),
            leg,
            symbol: p.symbol.clone(),
            side: p.position_side.exit_side(),
            spec: OrderSpec::Conditional(order),
            state: OrderState::Sending,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            exit_reason: None,
            rejection: None,
            sent_at: 0,
            updated_at: now,
        };
        let mut legs: Vec<OrderRecord> = Vec::new();
        if let Some(stop) = &p.stop {
            legs.push(leg(
                Leg::Stop,
                Conditional::Stop {
                    trigger: stop.trigger_price,
                    working_type: stop.working_type,
                },
            ));
        }
        for tp in &p.take_profits {
            legs.push(leg(
                Leg::protective(&tp.leg),
                Conditional::TakeProfit {
                    trigger: tp.trigger_price,
                    quantity: tp.quantity,
                },
            ));
        }
        if let Some(t) = &p.trailing {
            legs.push(leg(
                Leg::Trailing,
                Conditional::Trailing {
                    activation: t.activation_price,
                    callback_rate: t.callback_rate,
                    quantity: t.quantity,
                },
            ));
        }
        let mut out = Vec::new();
        let unsure = self.unsure_since(env);
        for leg in legs {
            // The stop goes first and may use the whole budget; a take-profit the budget
            // cannot take now waits for it (what this intent did so far is published now, and
            // the intent is read again later) or, past the wait allowed, is refused.
            let class = Request::of(&leg).map_or(Orders::Protective, |r| r.class());
            let refusal = if superseded.contains(&leg.leg.name()) {
                Some((
                    RejectReason::Superseded,
                    format!("a later protect intent of {} replaces this leg", p.symbol),
                ))
            } else if class == Orders::Protective {
                None
            } else {
                match self.budget(env, class, &leg.client_order_id).await? {
                    None => None,
                    Some(Throttled::Refuse(message)) => Some((RejectReason::RateLimited, message)),
                    Some(Throttled::Defer(later)) => {
                        if !out.is_empty() {
                            self.bus.publish_all(&out).await?;
                        }
                        return Err(later);
                    }
                }
            };
            if let Some((reason, message)) = refusal {
                out.extend(
                    self.reject_intent(env, &p.intent_id, &leg.leg, &p.symbol, reason, message)
                        .await?,
                );
                continue;
            }
            let mut leg = leg;
            leg.sent_at = unsure.unwrap_or_else(|| self.exchange.server_now_ms());
            let is_stop = leg.leg == Leg::Stop;
            let placed = match self.record_new(&leg).await? {
                Some(existing) => self.resume(env, existing).await?,
                None => {
                    let name = leg.leg.clone();
                    let coid = leg.client_order_id.clone();
                    let placed = if unsure.is_some() {
                        self.resume(env, leg).await?
                    } else {
                        self.send(env, leg).await?
                    };
                    if placed
                        .iter()
                        .any(|e| matches!(e.event, Event::OrderAccepted(_)))
                    {
                        out.extend(
                            self.replace_older_legs(env, &p.symbol, &name, &coid)
                                .await?,
                        );
                    }
                    placed
                }
            };
            let through = is_stop
                && placed.iter().any(|e| {
                    matches!(&e.event, Event::OrderRejected(r)
                        if r.reason == RejectReason::WouldImmediatelyTrigger)
                });
            out.extend(placed);
            if through {
                // The price is already through the stop: the position closes at market now, in
                // this intent (a redelivery finds the close by its client order id), rather
                // than after a round trip through exit-brain. The other legs have nothing left
                // to protect. Only the position the stop protects: not a position of the other
                // side that replaced it.
                out.extend(
                    self.close_symbol(
                        env,
                        &p.intent_id,
                        Leg::StopClose,
                        &p.symbol,
                        "stop",
                        Some(p.position_side),
                    )
                    .await?,
                );
                break;
            }
        }
        Ok(out)
    }

    /// Cancels the live conditional orders of the same leg placed by earlier intents.
    pub(crate) async fn replace_older_legs(
        &self,
        env: &Envelope,
        symbol: &str,
        leg: &Leg,
        keep: &str,
    ) -> Result<Vec<Envelope>, ExecError> {
        let mut out = Vec::new();
        for old in self.db.live_orders().await? {
            if old.is_conditional()
                && old.symbol == symbol
                && old.leg == *leg
                && old.client_order_id != keep
                && old.state != OrderState::Sending
            {
                out.extend(self.cancel_row(Some(env), &old, "replaced").await?);
            }
        }
        Ok(out)
    }

    /// Whether a newer conditional order of the same symbol and leg has been placed since `row`
    /// was sent: an order whose outcome was settled late must then go (a later protect intent
    /// could not cancel it while it was unknown).
    pub(crate) async fn replaced_since(&self, row: &OrderRecord) -> Result<bool, ExecError> {
        Ok(self.db.live_orders().await?.iter().any(|o| {
            o.is_conditional()
                && o.symbol == row.symbol
                && o.leg == row.leg
                && o.client_order_id != row.client_order_id
                && o.state != OrderState::Sending
                && o.sent_at > row.sent_at
        }))
    }
}
