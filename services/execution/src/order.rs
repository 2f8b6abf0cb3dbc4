//! What an order is, as types. Its [`Leg`] says what it is for (the entry, a reduction, a
//! close, a protective leg); its [`OrderSpec`] what was placed (a plain order, a conditional
//! order, a reduce-only close of the whole position, or nothing: a leg refused before an order
//! was built); its [`OrderState`] where it is, moved only by the [`OrderEvent`]s the table in
//! [`OrderState::after`] allows. [`OrderRecord`] is one order as recorded. How these map to
//! the columns of `exec_orders` is `db.rs`'s business alone.

use qt_events::{OrderKind, ProtectPosition, RejectReason, Side, SignalRef, WorkingType};
use rust_decimal::Decimal;

/// What an order is for, within its intent. The client order id derives from the intent id and
/// the leg's name, so a leg is placed at most once per intent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Leg {
    /// An `OpenPosition`'s order.
    Entry,
    /// A `ReducePosition`'s order.
    Reduce,
    /// A `ClosePosition`'s order.
    Close,
    /// The stop of a `ProtectPosition` (closes the whole position when it fires).
    Stop,
    /// The market close sent in the protect intent when the price is already through the stop.
    StopClose,
    /// A take-profit leg of a `ProtectPosition`, by its name (`tp1`, …).
    TakeProfit(String),
    /// The trailing stop of a `ProtectPosition`.
    Trailing,
    /// `CloseAll`'s close of one symbol.
    CloseAll(String),
}

impl Leg {
    /// The entry's name.
    pub const ENTRY: &'static str = "entry";
    /// A reduction's name.
    pub const REDUCE: &'static str = "reduce";
    /// A close's name.
    pub const CLOSE: &'static str = "close";
    const CLOSE_ALL_PREFIX: &'static str = "close_all:";

    /// The leg of a `ProtectPosition` leg named `name`.
    #[must_use]
    pub fn protective(name: &str) -> Self {
        match name {
            ProtectPosition::STOP_LEG => Self::Stop,
            ProtectPosition::TRAILING_LEG => Self::Trailing,
            ProtectPosition::STOP_CLOSE_LEG => Self::StopClose,
            other => Self::TakeProfit(other.to_owned()),
        }
    }

    /// The leg whose name is `name` (every name not otherwise known is a take-profit's).
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name {
            Self::ENTRY => Self::Entry,
            Self::REDUCE => Self::Reduce,
            Self::CLOSE => Self::Close,
            other => match other.strip_prefix(Self::CLOSE_ALL_PREFIX) {
                Some(symbol) => Self::CloseAll(symbol.to_owned()),
                None => Self::protective(other),
            },
        }
    }

    /// The leg's name: part of the client order id, stored as is.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Entry => Self::ENTRY.to_owned(),
            Self::Reduce => Self::REDUCE.to_owned(),
            Self::Close => Self::CLOSE.to_owned(),
            Self::Stop => ProtectPosition::STOP_LEG.to_owned(),
            Self::StopClose => ProtectPosition::STOP_CLOSE_LEG.to_owned(),
            Self::TakeProfit(name) => name.clone(),
            Self::Trailing => ProtectPosition::TRAILING_LEG.to_owned(),
            Self::CloseAll(symbol) => format!("{}{symbol}", Self::CLOSE_ALL_PREFIX),
        }
    }

    /// A leg that closes the whole position at market.
    #[must_use]
    pub fn closes_all(&self) -> bool {
        matches!(self, Self::Close | Self::StopClose | Self::CloseAll(_))
    }
}

impl std::fmt::Display for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a plain order is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    Market,
    Limit { price: Decimal },
}

/// A plain order on `/fapi/v1/order`: an entry or a reduction.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainOrder {
    pub pricing: Pricing,
    pub quantity: Decimal,
    pub reduce_only: bool,
    /// The leverage the entry asks for (0: none, a reduction).
    pub leverage: u32,
    /// The price the entry was sized with (the exchange's reference for a market order's
    /// notional), until it fills.
    pub reference_price: Option<Decimal>,
    /// The signal an entry was taken on, kept for the position it opens.
    pub signal: Option<SignalRef>,
}

/// A conditional order on `/fapi/v1/algoOrder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// `STOP_MARKET closePosition=true`: closes the whole position at `trigger`.
    Stop {
        trigger: Decimal,
        working_type: WorkingType,
    },
    /// `TAKE_PROFIT_MARKET reduceOnly`: `quantity` at `trigger`.
    TakeProfit { trigger: Decimal, quantity: Decimal },
    /// `TRAILING_STOP_MARKET reduceOnly`: `quantity`, active from `activation`, trailing by
    /// `callback_rate` percent.
    Trailing {
        activation: Decimal,
        callback_rate: Decimal,
        quantity: Decimal,
    },
}

/// What was placed for one leg.
// A plain order carries its signal (features and exits, a few hundred bytes); records are few
// and short-lived, so the size is not worth a box on every access.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum OrderSpec {
    /// A plain order (entry, reduction).
    Plain(PlainOrder),
    /// A conditional order (stop, take-profit, trailing stop).
    Conditional(Conditional),
    /// A reduce-only market order for the whole position as it was when placed.
    Close { quantity: Decimal },
    /// Nothing: the leg was refused before an order was built (an invalid intent, no position,
    /// the order-rate budget, a later intent superseding it).
    Refused,
}

impl OrderSpec {
    /// Whether it goes to the algo endpoint.
    #[must_use]
    pub fn is_conditional(&self) -> bool {
        matches!(self, Self::Conditional(_))
    }

    /// Its kind on the wire (in `OrderAccepted`, `OrderFilled`, …).
    #[must_use]
    pub fn kind(&self) -> OrderKind {
        match self {
            Self::Plain(PlainOrder {
                pricing: Pricing::Limit { .. },
                ..
            }) => OrderKind::Limit,
            Self::Plain(_) | Self::Close { .. } | Self::Refused => OrderKind::Market,
            Self::Conditional(Conditional::Stop { .. }) => OrderKind::StopMarket,
            Self::Conditional(Conditional::TakeProfit { .. }) => OrderKind::TakeProfitMarket,
            Self::Conditional(Conditional::Trailing { .. }) => OrderKind::TrailingStopMarket,
        }
    }

    /// The quantity ordered (zero for a stop, which closes whatever the position is).
    #[must_use]
    pub fn quantity(&self) -> Decimal {
        match self {
            Self::Plain(p) => p.quantity,
            Self::Close { quantity }
            | Self::Conditional(
                Conditional::TakeProfit { quantity, .. } | Conditional::Trailing { quantity, .. },
            ) => *quantity,
            Self::Conditional(Conditional::Stop { .. }) | Self::Refused => Decimal::ZERO,
        }
    }

    /// The price field of `OrderAccepted`: a limit order's price, a trailing stop's callback
    /// rate.
    #[must_use]
    pub fn price(&self) -> Option<Decimal> {
        match self {
            Self::Plain(PlainOrder {
                pricing: Pricing::Limit { price },
                ..
            }) => Some(*price),
            Self::Conditional(Conditional::Trailing { callback_rate, .. }) => Some(*callback_rate),
            _ => None,
        }
    }

    /// The trigger (a trailing stop's activation price).
    #[must_use]
    pub fn trigger_price(&self) -> Option<Decimal> {
        match self {
            Self::Conditional(
                Conditional::Stop { trigger, .. } | Conditional::TakeProfit { trigger, .. },
            ) => Some(*trigger),
            Self::Conditional(Conditional::Trailing { activation, .. }) => Some(*activation),
            _ => None,
        }
    }

    /// Whether it can only reduce the position (`reduceOnly` or `closePosition`).
    #[must_use]
    pub fn reduces(&self) -> bool {
        match self {
            Self::Plain(p) => p.reduce_only,
            Self::Close { .. } | Self::Conditional(_) => true,
            Self::Refused => false,
        }
    }

    /// The plain order, if it is one.
    #[must_use]
    pub fn plain(&self) -> Option<&PlainOrder> {
        match self {
            Self::Plain(p) => Some(p),
            _ => None,
        }
    }
}

/// Why an order was refused (by the risk guard, the budget, or the exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
    /// Binance's error code, when the exchange refused it.
    pub exchange_code: Option<i64>,
}

/// An order's state in execution's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Recorded before the request left; the outcome is not known yet.
    Sending,
    /// The exchange has it.
    Acked,
    PartiallyFilled,
    Filled,
    /// Refused by the risk guard or by the exchange, or never executed.
    Rejected,
    Cancelled,
    Expired,
    /// A conditional order that fired; its fills arrive on the order it created.
    Triggered,
}

/// What can happen to a recorded order. Its state changes only by these, as
/// [`OrderState::after`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// The exchange has it (the answer to its request, or found by a query).
    Acked,
    /// Refused by the exchange, or proven never executed and given up.
    Rejected,
    /// A fill of a plain order; `complete` when nothing is left of it.
    Filled { complete: bool },
    /// A conditional order fired (`TRIGGERED`/`FINISHED` on the algo endpoint).
    Triggered,
    /// A fill of the order a conditional order placed; `complete` when nothing is left.
    TriggeredFill { complete: bool },
    /// Ended without (further) fills: cancelled, or expired (also a late exchange rejection).
    Ended { expired: bool },
}

impl OrderEvent {
    /// Every event (for the table's tests and the store's statements).
    pub const ALL: [Self; 9] = [
        Self::Acked,
        Self::Rejected,
        Self::Filled { complete: false },
        Self::Filled { complete: true },
        Self::Triggered,
        Self::TriggeredFill { complete: false },
        Self::TriggeredFill { complete: true },
        Self::Ended { expired: false },
        Self::Ended { expired: true },
    ];
}

impl OrderState {
    /// Every state.
    pub const ALL: [Self; 8] = [
        Self::Sending,
        Self::Acked,
        Self::PartiallyFilled,
        Self::Filled,
        Self::Rejected,
        Self::Cancelled,
        Self::Expired,
        Self::Triggered,
    ];

    /// The transition table: the state after `event`, or `None` when the event is not allowed
    /// in this state (the record keeps its state). An acknowledgement that arrives after a
    /// fill or an end (the answer overtaken by the user data stream) leaves the later state.
    #[must_use]
    pub fn after(self, event: OrderEvent) -> Option<Self> {
        use OrderEvent as E;
        use OrderState as S;
        let filled = |complete| {
            if complete {
                S::Filled
            } else {
                S::PartiallyFilled
            }
        };
        match (self, event) {
            (S::Sending, E::Acked) => Some(S::Acked),
            (later, E::Acked) => Some(later),
            (S::Sending, E::Rejected) => Some(S::Rejected),
            (S::Sending | S::Acked | S::PartiallyFilled, E::Filled { complete }) => {
                Some(filled(complete))
            }
            (S::Sending | S::Acked | S::Triggered, E::Triggered) => Some(S::Triggered),
            (S::Sending | S::Acked | S::Triggered, E::TriggeredFill { complete }) => {
                Some(if complete { S::Filled } else { S::Triggered })
            }
            (S::Sending | S::Acked | S::PartiallyFilled | S::Triggered, E::Ended { expired }) => {
                Some(if expired { S::Expired } else { S::Cancelled })
            }
            _ => None,
        }
    }

    /// The stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "SENDING",
            Self::Acked => "ACKED",
            Self::PartiallyFilled => "PARTIALLY_FILLED",
            Self::Filled => "FILLED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::Triggered => "TRIGGERED",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn parse_text(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// No more fills or state changes will come.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Rejected | Self::Cancelled | Self::Expired
        )
    }
}

/// One order as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub client_order_id: String,
    pub intent_id: String,
    pub leg: Leg,
    pub symbol: String,
    pub side: Side,
    pub spec: OrderSpec,
    pub state: OrderState,
    pub exchange_order_id: Option<String>,
    pub filled_qty: Decimal,
    /// The fills' average price; zero before the first fill.
    pub avg_price: Decimal,
    /// Why a close or reduction was asked for (the intent's reason).
    pub exit_reason: Option<String>,
    /// Why it was refused, once REJECTED.
    pub rejection: Option<Rejection>,
    /// Exchange time when the (last) request left, ms: the recvWindow fence starts here.
    pub sent_at: i64,
    pub updated_at: i64,
}

impl OrderRecord {
    /// Whether it is a conditional order (algo endpoint).
    #[must_use]
    pub fn is_conditional(&self) -> bool {
        self.spec.is_conditional()
    }

    /// The price an entry in flight counts with: the fills' average once it has fills, the
    /// price it was sized with before.
    #[must_use]
    pub fn price_in_flight(&self) -> Decimal {
        if self.filled_qty > Decimal::ZERO {
            return self.avg_price;
        }
        self.spec
            .plain()
            .and_then(|p| p.reference_price)
            .unwrap_or_default()
    }

    /// The leverage the order's entry asked for (0 for any other order).
    #[must_use]
    pub fn leverage(&self) -> u32 {
        self.spec.plain().map_or(0, |p| p.leverage)
    }

    /// The signal the entry was taken on.
    #[must_use]
    pub fn signal(&self) -> Option<&SignalRef> {
        self.spec.plain().and_then(|p| p.signal.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_names_round_trip() {
        for leg in [
            Leg::Entry,
            Leg::Reduce,
            Leg::Close,
            Leg::Stop,
            Leg::StopClose,
            Leg::TakeProfit("tp2".into()),
            Leg::Trailing,
            Leg::CloseAll("BTCUSDT".into()),
        ] {
            assert_eq!(Leg::parse(&leg.name()), leg);
        }
        assert_eq!(Leg::parse("close_all:ETHUSDT").name(), "close_all:ETHUSDT");
        assert!(Leg::CloseAll("X".into()).closes_all() && !Leg::Reduce.closes_all());
    }

    #[test]
    fn order_states_round_trip_and_know_which_are_final() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse_text(s.as_str()), Some(s));
        }
        assert_eq!(OrderState::parse_text("HALF"), None);
        assert!(OrderState::Filled.is_final() && OrderState::Rejected.is_final());
        assert!(!OrderState::Sending.is_final() && !OrderState::Triggered.is_final());
    }

    /// Every transition the code makes, from the states it makes it in.
    #[test]
    fn every_transition_the_code_makes_is_allowed() {
        use OrderEvent as E;
        use OrderState as S;
        for (from, event, to) in [
            // The answer to the request, or an unknown outcome settled by query.
            (S::Sending, E::Acked, S::Acked),
            // Refused by the exchange; or never executed and abandoned by reconciliation.
            (S::Sending, E::Rejected, S::Rejected),
            // Fills, also one that overtakes the answer to the request.
            (
                S::Sending,
                E::Filled { complete: false },
                S::PartiallyFilled,
            ),
            (S::Acked, E::Filled { complete: false }, S::PartiallyFilled),
            (S::Acked, E::Filled { complete: true }, S::Filled),
            (
                S::PartiallyFilled,
                E::Filled { complete: false },
                S::PartiallyFilled,
            ),
            (S::PartiallyFilled, E::Filled { complete: true }, S::Filled),
            // A conditional order fires, then the order it placed fills.
            (S::Acked, E::Triggered, S::Triggered),
            (S::Sending, E::Triggered, S::Triggered),
            (
                S::Triggered,
                E::TriggeredFill { complete: false },
                S::Triggered,
            ),
            (S::Triggered, E::TriggeredFill { complete: true }, S::Filled),
            (S::Acked, E::TriggeredFill { complete: true }, S::Filled),
            // Cancelled by us or by a newer leg, expired, or ended on the exchange.
            (S::Acked, E::Ended { expired: false }, S::Cancelled),
            (
                S::PartiallyFilled,
                E::Ended { expired: false },
                S::Cancelled,
            ),
            (S::Acked, E::Ended { expired: true }, S::Expired),
            (S::Triggered, E::Ended { expired: true }, S::Expired),
            (S::Sending, E::Ended { expired: false }, S::Cancelled),
            // An acknowledgement overtaken by a fill or an end leaves the later state.
            (S::Filled, E::Acked, S::Filled),
            (S::PartiallyFilled, E::Acked, S::PartiallyFilled),
            (S::Cancelled, E::Acked, S::Cancelled),
        ] {
            assert_eq!(from.after(event), Some(to), "{from:?} + {event:?}");
        }
    }

    #[test]
    fn illegal_transitions_are_refused() {
        use OrderEvent as E;
        use OrderState as S;
        // Nothing but a late acknowledgement moves a final state.
        for from in [S::Filled, S::Rejected, S::Cancelled, S::Expired] {
            for event in OrderEvent::ALL {
                let expected = (event == E::Acked).then_some(from);
                assert_eq!(from.after(event), expected, "{from:?} + {event:?}");
            }
        }
        // The exchange's refusal comes only as the answer to the request.
        for from in [S::Acked, S::PartiallyFilled, S::Triggered] {
            assert_eq!(from.after(E::Rejected), None, "{from:?}");
        }
        // A plain order never fires; a fired conditional order's fills are its placed order's.
        assert_eq!(S::PartiallyFilled.after(E::Triggered), None);
        assert_eq!(S::Triggered.after(E::Filled { complete: true }), None);
        assert_eq!(
            S::PartiallyFilled.after(E::TriggeredFill { complete: true }),
            None
        );
    }

    #[test]
    fn a_spec_says_what_goes_on_the_wire() {
        let trailing = OrderSpec::Conditional(Conditional::Trailing {
            activation: Decimal::from(100),
            callback_rate: Decimal::ONE,
            quantity: Decimal::TWO,
        });
        assert_eq!(trailing.kind(), OrderKind::TrailingStopMarket);
        assert_eq!(trailing.price(), Some(Decimal::ONE));
        assert_eq!(trailing.trigger_price(), Some(Decimal::from(100)));
        assert_eq!(trailing.quantity(), Decimal::TWO);
        let stop = OrderSpec::Conditional(Conditional::Stop {
            trigger: Decimal::TEN,
            working_type: WorkingType::MarkPrice,
        });
        assert!(stop.reduces() && stop.quantity().is_zero());
        let limit = OrderSpec::Plain(PlainOrder {
            pricing: Pricing::Limit {
                price: Decimal::TEN,
            },
            quantity: Decimal::ONE,
            reduce_only: false,
            leverage: 5,
            reference_price: Some(Decimal::TEN),
            signal: None,
        });
        assert_eq!(limit.kind(), OrderKind::Limit);
        assert!(!limit.reduces() && !OrderSpec::Refused.reduces());
    }
}
