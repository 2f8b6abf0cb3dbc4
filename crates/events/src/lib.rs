//! `qt-events` is the wire contract of Quantum Trader and the only crate that defines wire types.
//!
//! It holds the [`Envelope`] every stream entry carries, every event and command as a payload
//! struct, the [`Event`] sum type that names them, the [`Stream`]s they travel on and the codec
//! (MessagePack with named fields, so a reader accepts fields it does not know). It also holds the
//! injectable [`clock`], because every crate that stamps an envelope needs one, and the JSON of the
//! portfolio API ([`api`]), which portfolio-intelligence serves and `qtctl` reads.
//!
//! It must never know about Redis, HTTP, SQL or the exchange: it is data and its encoding only.
//! A change to a payload bumps that event's version, regenerates `proto-schemas/`
//! (`cargo xtask schemas`) and keeps old payloads decoding (the golden fixtures prove it).

pub mod api;
pub mod clock;
mod envelope;
mod event;
pub mod ids;
pub mod payload;
#[doc(hidden)]
pub mod samples;
pub mod schema;
mod stream;

pub use envelope::{Envelope, EnvelopeError, FieldMap};
pub use event::{DecodeError, EVENT_TYPES, Event, EventType};
pub use payload::*;
pub use stream::{Retention, Stream, StreamNames};

/// Re-exported so that users of the contract name the same `Decimal`.
pub use rust_decimal::Decimal;
