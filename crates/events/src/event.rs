//! The [`Event`] sum type: every payload under its wire name, version and stream.

use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::payload::*;
use crate::stream::Stream;

/// Why an entry's payload could not be decoded. Each goes to the dead-letter stream.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{type_name} v{got} is newer than the v{supported} this build understands")]
    FutureVersion {
        type_name: &'static str,
        got: u16,
        supported: u16,
    },
    #[error("undecodable {type_name} payload: {source}")]
    Payload {
        type_name: &'static str,
        #[source]
        source: rmp_serde::decode::Error,
    },
}

/// One entry of [`EVENT_TYPES`]: what the contract knows about a type.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    /// The wire name in the envelope's `type` field.
    pub name: &'static str,
    /// The newest schema version this build writes and reads.
    pub version: u16,
    /// The stream it travels on.
    pub stream: Stream,
    /// Its JSON Schema.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $version:literal on $stream:ident; )*) => {
        /// Every event and command of the system.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// Every type, in contract order.
        pub const EVENT_TYPES: &[EventType] = &[
            $( EventType {
                name: stringify!($variant),
                version: $version,
                stream: Stream::$stream,
                schema: <$ty as JsonSchema>::json_schema,
            }, )*
        ];

        impl Event {
            /// The wire name, e.g. `OrderFilled`.
            pub fn type_name(&self) -> &'static str {
                match self { $( Event::$variant(_) => stringify!($variant), )* }
            }

            /// The schema version this build writes.
            pub fn version(&self) -> u16 {
                match self { $( Event::$variant(_) => $version, )* }
            }

            /// The stream this event belongs on.
            pub fn stream(&self) -> Stream {
                match self { $( Event::$variant(_) => Stream::$stream, )* }
            }

            /// The payload as MessagePack with named fields.
            pub fn encode_data(&self) -> Vec<u8> {
                let r = match self { $( Event::$variant(p) => rmp_serde::to_vec_named(p), )* };
                // Payloads are plain structs of strings, numbers, maps and vectors: encoding
                // into a Vec cannot fail.
                r.unwrap_or_default()
            }

            /// The payload as JSON, for people (`qtctl tail`).
            pub fn data_json(&self) -> serde_json::Value {
                let r = match self { $( Event::$variant(p) => serde_json::to_value(p), )* };
                r.unwrap_or(serde_json::Value::Null)
            }

            /// Decodes a payload of `type_name` at schema version `v`. Fields the type does not
            /// know are ignored; a version newer than this build's is refused.
            pub fn decode(type_name: &str, v: u16, data: &[u8]) -> Result<Event, DecodeError> {
                match type_name {
                    $( stringify!($variant) => {
                        let name = stringify!($variant);
                        if v > $version {
                            return Err(DecodeError::FutureVersion { type_name: name, got: v, supported: $version });
                        }
                        rmp_serde::from_slice::<$ty>(data)
                            .map(Event::$variant)
                            .map_err(|source| DecodeError::Payload { type_name: name, source })
                    } )*
                    other => Err(DecodeError::UnknownType(other.chars().take(64).collect())),
                }
            }
        }
    };
}

events! {
    CandleClosed(CandleClosed) = 1 on Market;
    MarkPriceUpdated(MarkPriceUpdated) = 1 on Market;
    SignalGenerated(SignalGenerated) = 2 on Signals;
    OpenPosition(OpenPosition) = 2 on Intents;
    ReducePosition(ReducePosition) = 2 on Intents;
    ClosePosition(ClosePosition) = 2 on Intents;
    ProtectPosition(ProtectPosition) = 1 on Intents;
    CancelOrder(CancelOrder) = 1 on Intents;
    OrderAccepted(OrderAccepted) = 1 on Orders;
    OrderRejected(OrderRejected) = 1 on Orders;
    OrderPartiallyFilled(OrderFill) = 1 on Orders;
    OrderFilled(OrderFill) = 1 on Orders;
    OrderCancelled(OrderEnded) = 1 on Orders;
    OrderExpired(OrderEnded) = 1 on Orders;
    PositionOpened(PositionOpened) = 2 on Positions;
    PositionChanged(PositionChanged) = 1 on Positions;
    PositionClosed(PositionClosed) = 2 on Positions;
    FundingFeeCharged(FundingFeeCharged) = 1 on Positions;
    PortfolioSnapshot(PortfolioSnapshot) = 1 on Portfolio;
    ModelDeployed(ModelDeployed) = 1 on Models;
    ModelRolledBack(ModelRolledBack) = 1 on Models;
    SetKillSwitch(SetKillSwitch) = 1 on Control;
    CloseAll(CloseAll) = 1 on Control;
    RetrainNow(RetrainNow) = 1 on Control;
    ReloadConfig(ReloadConfig) = 1 on Control;
    ResumeTrading(ResumeTrading) = 1 on Control;
    AlertRaised(AlertRaised) = 1 on Alerts;
    ContextObserved(ContextObserved) = 1 on Context;
    DeadLettered(DeadLettered) = 1 on Dlq;
}

impl Event {
    /// The symbol the event is about, when there is one (the envelope's `sym`).
    pub fn symbol(&self) -> Option<&str> {
        Some(match self {
            Event::CandleClosed(p) => &p.symbol,
            Event::MarkPriceUpdated(p) => &p.symbol,
            Event::SignalGenerated(p) => &p.symbol,
            Event::OpenPosition(p) => &p.symbol,
            Event::ReducePosition(p) => &p.symbol,
            Event::ClosePosition(p) => &p.symbol,
            Event::ProtectPosition(p) => &p.symbol,
            Event::CancelOrder(p) => &p.symbol,
            Event::OrderAccepted(p) => &p.symbol,
            Event::OrderRejected(p) => &p.symbol,
            Event::OrderPartiallyFilled(p) | Event::OrderFilled(p) => &p.symbol,
            Event::OrderCancelled(p) | Event::OrderExpired(p) => &p.symbol,
            Event::PositionOpened(p) => &p.symbol,
            Event::PositionChanged(p) => &p.symbol,
            Event::PositionClosed(p) => &p.symbol,
            Event::FundingFeeCharged(p) => &p.symbol,
            Event::PortfolioSnapshot(_)
            | Event::ModelDeployed(_)
            | Event::ModelRolledBack(_)
            | Event::SetKillSwitch(_)
            | Event::CloseAll(_)
            | Event::RetrainNow(_)
            | Event::ReloadConfig(_)
            | Event::ResumeTrading(_)
            | Event::AlertRaised(_)
            | Event::ContextObserved(_)
            | Event::DeadLettered(_) => return None,
        })
    }

    /// The contract entry of a wire name.
    pub fn lookup(type_name: &str) -> Option<&'static EventType> {
        EVENT_TYPES.iter().find(|t| t.name == type_name)
    }
}
