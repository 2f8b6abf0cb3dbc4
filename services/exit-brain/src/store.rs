//! What exit-brain keeps: the plan of every open position, the learned profile of every symbol,
//! the outcome of every closed position, and, per handled event, the intents it produced (so a
//! redelivered event re-publishes exactly the same intents instead of computing new ones).
//!
//! [`PlanStore`] is the seam; [`MemoryStore`] keeps everything in memory (tests of the logic, and
//! a process that is allowed to forget); the database store over `qt-store` is in [`crate::sql`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use qt_events::{Decimal, Envelope, PositionSide};
use qt_exits::{ExitPlan, SymbolProfile, TradeOutcome};
use serde::{Deserialize, Serialize};

/// The exit state of one open position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub position_id: String,
    pub symbol: String,
    pub side: PositionSide,
    pub plan: ExitPlan,
    /// Bumped by every `ProtectPosition` sent; part of the intent id.
    pub revision: u32,
    /// The position's quantity as execution last reported it.
    pub held: Decimal,
    /// Intent ids of every `ProtectPosition` that carried a stop.
    pub stop_intents: Vec<String>,
    /// True once an `OrderAccepted` confirmed a stop on the exchange.
    pub stop_confirmed: bool,
    /// Client order id of every take-profit leg ever requested → the leg's name.
    pub tp_orders: BTreeMap<String, String>,
    /// When the protect that the watchdog times was sent, ms.
    pub protect_sent_ms: i64,
    pub watchdog_fired: bool,
    pub time_stop_sent: bool,
    /// The event whose commit last changed this plan.
    #[serde(default)]
    pub last_event: Option<String>,
}

/// A closed position as exit-brain learned from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub position_id: String,
    pub symbol: String,
    pub side: PositionSide,
    pub entry_price: Decimal,
    pub exit_price: Decimal,
    pub net_pnl: Decimal,
    pub reason: String,
    pub closed_at: i64,
    pub outcome: TradeOutcome,
    /// The symbol's profile after learning from this trade.
    pub profile_after: SymbolProfile,
}

/// Everything loaded at start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub plans: Vec<Tracked>,
    pub profiles: HashMap<String, SymbolProfile>,
}

/// What was recorded for a handled event.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The stream entry that carried it (`<stream>/<entry id>`).
    pub source: String,
    pub outputs: Vec<Envelope>,
}

/// One atomic change: applied in full or not at all.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The event handled, recorded with `outputs` so its redelivery replays them.
    pub event_id: Option<String>,
    /// The stream entry that carried it (`<stream>/<entry id>`).
    pub source: String,
    pub ts: i64,
    pub upsert: Vec<Tracked>,
    pub delete: Vec<String>,
    pub profiles: Vec<(String, SymbolProfile)>,
    pub outcomes: Vec<OutcomeRecord>,
    pub outputs: Vec<Envelope>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty()
            && self.delete.is_empty()
            && self.profiles.is_empty()
            && self.outcomes.is_empty()
            && self.outputs.is_empty()
    }
}

/// Why the store failed. Every store error is worth a retry: the database may come back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A database error may heal; corrupt data will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(_))
    }
}

/// Durable state of exit-brain.
pub trait PlanStore: Send + Sync + 'static {
    /// Every open plan and every profile.
    fn load(&self) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;
    /// The outputs recorded for `event_id` and the entry that carried it, when it was handled.
    fn outputs_of(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<Handled>, StoreError>> + Send;
    /// Applies `commit` atomically.
    fn commit(&self, commit: Commit) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The outcomes recorded for a symbol, oldest first.
    fn outcomes(
        &self,
        symbol: &str,
    ) -> impl Future<Output = Result<Vec<OutcomeRecord>, StoreError>> + Send;
}

#[derive(Debug, Default)]
struct Mem {
    plans: BTreeMap<String, Tracked>,
    profiles: HashMap<String, SymbolProfile>,
    processed: HashMap<String, Handled>,
    outcomes: Vec<OutcomeRecord>,
}

/// A [`PlanStore`] in memory; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<Mutex<Mem>>);

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> Result<T, StoreError> {
        let mut g = self
            .0
            .lock()
            .map_err(|_| StoreError::Database("memory store lock poisoned".into()))?;
        Ok(f(&mut g))
    }
}

impl PlanStore for MemoryStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.with(|m| Snapshot {
            plans: m.plans.values().cloned().collect(),
            profiles: m.profiles.clone(),
        })
    }

    async fn outputs_of(&self, event_id: &str) -> Result<Option<Handled>, StoreError> {
        self.with(|m| m.processed.get(event_id).cloned())
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        self.with(|m| {
            for t in c.upsert {
                m.plans.insert(t.position_id.clone(), t);
            }
            for id in &c.delete {
                m.plans.remove(id);
            }
            for (s, p) in c.profiles {
                m.profiles.insert(s, p);
            }
            m.outcomes.extend(c.outcomes);
            if let Some(id) = c.event_id {
                m.processed.entry(id).or_insert(Handled {
                    source: c.source,
                    outputs: c.outputs,
                });
            }
        })
    }

    async fn outcomes(&self, symbol: &str) -> Result<Vec<OutcomeRecord>, StoreError> {
        self.with(|m| {
            m.outcomes
                .iter()
                .filter(|o| o.symbol == symbol)
                .cloned()
                .collect()
        })
    }
}
