//! `qt-bus` is the only crate that touches Redis. It moves [`qt_events::Envelope`]s over Redis
//! streams with at-least-once delivery and gives handlers what they need for effects exactly once.
//!
//! - [`Bus`] publishes (`XADD` with each stream's retention), creates groups idempotently, trims
//!   command streams only below what every group has acknowledged, and reports stream stats.
//! - [`Consumer`] runs one consumer group: its own pending entries first, then new ones, in
//!   batches on a dedicated blocking connection; it acknowledges an entry only after its handler
//!   succeeded (and, atomically with the ack, publishes what the handler produced); it retries
//!   transient failures, claims entries left by a dead instance (`XAUTOCLAIM`), dead-letters what
//!   cannot be decoded or keeps failing, reconnects when Redis comes back and stops gracefully.
//! - [`ProcessedStore`] lets a handler apply a Redis effect once per event id.
//! - [`Connection`]: a single server or a Redis Cluster (`BusConfig::with_cluster`; every key
//!   under a prefix with a hash tag, so each handler's `MULTI` stays within one slot).
//! - [`SharedCache`] keeps short-lived values, leases and holds every instance shares (the
//!   market-context cache of `qt-context`).
//!
//! It never interprets payloads beyond decoding the envelope, and never crashes on bad input.

mod conn;
mod consumer;
mod error;
mod processed;
mod publisher;
mod raw;
mod shared_cache;
mod stats;
pub mod trace;

pub use conn::Connection;
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerHandle, Delivery, Handler, HandlerError, Outcome,
};
pub use error::BusError;
pub use processed::ProcessedStore;
pub use publisher::{Bus, BusConfig};
pub use raw::{RawEntry, parse_id as parse_entry_id};
pub use shared_cache::SharedCache;
pub use stats::{GroupStats, StreamStats};

/// Re-exported so that services and tests name the same client without depending on `redis`.
pub use redis::Client as RedisClient;
