//! Order facts as events with deterministic ids (`OrderAccepted`, `OrderRejected`,
//! `OrderCancelled`/`OrderExpired`), and the wire reason of an exchange refusal.

use qt_events::ids::derived_event_id;
use qt_events::{Envelope, Event, OrderAccepted, OrderEnded, OrderRejected, RejectReason};
use qt_exchange::{ApiCode, Exchange, ExchangeError, Refusal};

use crate::order::{OrderRecord, Rejection};
use crate::service::Execution;

impl<E: Exchange + Clone + 'static> Execution<E> {
    pub(crate) fn accepted_event(&self, cause: Option<&Envelope>, row: &OrderRecord) -> Envelope {
        self.envelope(
            Event::OrderAccepted(OrderAccepted {
                intent_id: row.intent_id.clone(),
                client_order_id: row.client_order_id.clone(),
                exchange_order_id: row.exchange_order_id.clone(),
                symbol: row.symbol.clone(),
                side: row.side,
                kind: row.spec.kind(),
                quantity: row.spec.quantity(),
                price: row.spec.price(),
                trigger_price: row.spec.trigger_price(),
                reduce_only: row.spec.reduces(),
            }),
            derived_event_id(&[&row.client_order_id, "accepted"]),
            cause,
        )
    }

    pub(crate) fn rejected_event(&self, env: &Envelope, row: &OrderRecord) -> Envelope {
        let rejection = row.rejection.clone().unwrap_or(Rejection {
            reason: RejectReason::Other,
            message: String::new(),
            exchange_code: None,
        });
        self.envelope(
            Event::OrderRejected(OrderRejected {
                intent_id: row.intent_id.clone(),
                client_order_id: Some(row.client_order_id.clone()),
                symbol: row.symbol.clone(),
                reason: rejection.reason,
                message: rejection.message,
                exchange_code: rejection.exchange_code,
                until_ms: None,
            }),
            derived_event_id(&[&row.client_order_id, "rejected"]),
            Some(env),
        )
    }

    pub(crate) fn ended_event(
        &self,
        cause: Option<&Envelope>,
        row: &OrderRecord,
        expired: bool,
        reason: &str,
    ) -> Envelope {
        let ended = OrderEnded {
            intent_id: row.intent_id.clone(),
            client_order_id: row.client_order_id.clone(),
            exchange_order_id: row.exchange_order_id.clone(),
            symbol: row.symbol.clone(),
            filled_qty: row.filled_qty,
            reason: reason.to_owned(),
        };
        if expired {
            self.envelope(
                Event::OrderExpired(ended),
                derived_event_id(&[&row.client_order_id, "expired"]),
                cause,
            )
        } else {
            self.envelope(
                Event::OrderCancelled(ended),
                derived_event_id(&[&row.client_order_id, "cancelled"]),
                cause,
            )
        }
    }
}

/// The wire reason of an exchange refusal.
#[must_use]
pub fn reject_reason(e: &ExchangeError) -> RejectReason {
    match e {
        ExchangeError::Refused(r) => match r {
            Refusal::MinNotional { .. } => RejectReason::MinNotional,
            Refusal::QtyBelowMin { .. }
            | Refusal::QtyAboveMax { .. }
            | Refusal::PriceOutOfRange { .. } => RejectReason::ExchangeFilter,
            Refusal::InvalidClientOrderId(_) | Refusal::InvalidOrder(_) => {
                RejectReason::InvalidIntent
            }
            Refusal::UnknownSymbol(_) => RejectReason::ExchangeFilter,
            Refusal::MissingCredentials => RejectReason::ExchangeError,
        },
        _ => match e.api_code() {
            Some(ApiCode::MarginInsufficient | ApiCode::BalanceInsufficient) => {
                RejectReason::MarginInsufficient
            }
            Some(ApiCode::BadPrecision | ApiCode::FilterFailure) => RejectReason::Precision,
            Some(ApiCode::MinNotional) => RejectReason::MinNotional,
            Some(ApiCode::ReduceOnlyRejected) => RejectReason::ReduceOnlyRejected,
            Some(ApiCode::WouldImmediatelyTrigger) => RejectReason::WouldImmediatelyTrigger,
            _ => RejectReason::ExchangeError,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> ExchangeError {
        ExchangeError::Api {
            status,
            code,
            msg: "x".into(),
            fence: None,
        }
    }

    #[test]
    fn exchange_refusals_map_to_wire_reason_codes() {
        assert_eq!(
            reject_reason(&api(400, -2019)),
            RejectReason::MarginInsufficient
        );
        assert_eq!(reject_reason(&api(400, -1111)), RejectReason::Precision);
        assert_eq!(reject_reason(&api(400, -4164)), RejectReason::MinNotional);
        assert_eq!(
            reject_reason(&api(400, -2022)),
            RejectReason::ReduceOnlyRejected
        );
        assert_eq!(
            reject_reason(&api(400, -2021)),
            RejectReason::WouldImmediatelyTrigger
        );
        assert_eq!(reject_reason(&api(400, -9999)), RejectReason::ExchangeError);
        let local = ExchangeError::Refused(Refusal::MinNotional {
            notional: "5".into(),
            min: "100".into(),
        });
        assert_eq!(reject_reason(&local), RejectReason::MinNotional);
        let unknown = ExchangeError::Refused(Refusal::UnknownSymbol("XUSDT".into()));
        assert_eq!(reject_reason(&unknown), RejectReason::ExchangeFilter);
    }
}
