//! The running simulator, shared by every connection: the exchange behind one lock, the API
//! secrets, the server clock, the channels the streams read, the fault and rate-limit settings
//! and the state snapshot. Requests reach it through the route table (`routes.rs`); it knows
//! nothing of HTTP.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use qt_events::clock::SharedClock;
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, watch};

use crate::SimError;
use crate::config::{Faults, SimConfig};
use crate::exchange::{Exchange, Rules, Snapshot};
use crate::limits::RateLimiter;
use crate::market::{Instruments, Market};

/// A serialized market-stream message.
#[derive(Debug, Clone)]
pub(crate) struct MarketMsg {
    pub stream: String,
    pub json: Arc<str>,
}

/// A serialized user-data event.
#[derive(Debug, Clone)]
pub(crate) struct UserMsg {
    pub account: String,
    pub kind: &'static str,
    pub json: Arc<str>,
}

/// How often each injected fault actually fired since start, shown by `GET /sim/state` so a
/// test can prove its faults happened.
#[derive(Debug, Default)]
pub(crate) struct FaultCounts {
    /// Requests answered 503 without being executed.
    pub errors: AtomicU64,
    /// Order placements executed whose response was replaced by a timeout answer.
    pub lost_responses: AtomicU64,
    /// WebSocket connections dropped without a close frame (fault timer or `/sim/ws/drop`).
    pub ws_drops: AtomicU64,
}

/// The running simulator.
pub struct App {
    exchange: Mutex<Exchange>,
    /// The served symbols and their filters (fixed at start).
    pub(crate) instruments: Instruments,
    pub(crate) secrets: HashMap<String, String>,
    pub(crate) clock: SharedClock,
    pub(crate) market_tx: broadcast::Sender<MarketMsg>,
    pub(crate) user_tx: broadcast::Sender<UserMsg>,
    pub(crate) drop_ws: watch::Sender<u64>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) fault_counts: FaultCounts,
    pub(crate) limits: RateLimiter,
    /// Seeded: draws the injected faults and the listenKeys.
    pub(crate) rng: Mutex<rand::rngs::StdRng>,
    dirty: AtomicBool,
    pub(crate) listen_key_ttl_ms: i64,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) speed: f64,
    pub(crate) control_api: bool,
    listen_key_seq: AtomicU64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("accounts", &self.secrets.keys().collect::<Vec<_>>())
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// Lock a mutex, taking the value over if a panicking holder poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SNAPSHOT_FILE: &str = "sim-exchange-state.json";

impl App {
    /// Build the market, the accounts and the exchange; restore the snapshot of
    /// `cfg.state_dir` when there is one.
    ///
    /// # Errors
    /// The market data, the funding files or the snapshot cannot be read.
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        let market = Market::build(&cfg)?;
        let keys: Vec<String> = cfg.keys.iter().map(|k| k.key.clone()).collect();
        let rules = Rules {
            fill: cfg.fill_model,
            initial_balance: cfg.initial_balance,
            default_leverage: cfg.default_leverage,
            maint_margin_rate: cfg.maint_margin_rate,
            funding: crate::funding::FundingRates::load(&cfg.funding).map_err(SimError::Funding)?,
        };
        let instruments = market.instruments();
        let mut exchange = Exchange::new(rules, market, &keys);
        if let Some(snap) = load_snapshot(cfg.state_dir.as_deref())? {
            exchange.restore(snap);
        }
        let (market_tx, _) = broadcast::channel(4096);
        let (user_tx, _) = broadcast::channel(8192);
        let (drop_ws, _) = watch::channel(0);
        Ok(Self {
            exchange: Mutex::new(exchange),
            instruments,
            secrets: cfg
                .keys
                .iter()
                .map(|k| (k.key.clone(), k.secret.clone()))
                .collect(),
            clock: cfg.clock.clone(),
            market_tx,
            user_tx,
            drop_ws,
            faults: Mutex::new(cfg.faults.clone()),
            fault_counts: FaultCounts::default(),
            limits: RateLimiter::new(cfg.limits),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(cfg.seed)),
            dirty: AtomicBool::new(false),
            listen_key_ttl_ms: cfg.listen_key_ttl_ms,
            state_dir: cfg.state_dir.clone(),
            speed: cfg.speed,
            control_api: cfg.control_api,
            listen_key_seq: AtomicU64::new(0),
        })
    }

    /// Server time (the injected clock).
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Read the exchange under its lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Exchange) -> R) -> R {
        f(&lock(&self.exchange))
    }

    /// Run `f` on the exchange, then publish the events it queued (in order, under the lock).
    pub(crate) fn with_exchange<R>(&self, f: impl FnOnce(&mut Exchange) -> R) -> R {
        let mut e = lock(&self.exchange);
        let r = f(&mut e);
        let (users, markets) = e.take_events();
        self.publish(&self.user_tx, users, |u| UserMsg {
            account: u.account,
            kind: u.kind,
            json: u.payload.to_string().into(),
        });
        self.publish(&self.market_tx, markets, |m| MarketMsg {
            stream: m.stream,
            json: m.payload.to_string().into(),
        });
        r
    }

    /// Send `events` to the streams (serialized only when someone listens); the state changed.
    fn publish<E, M>(&self, tx: &broadcast::Sender<M>, events: Vec<E>, msg: impl Fn(E) -> M) {
        if events.is_empty() {
            return;
        }
        self.mark_dirty();
        if tx.receiver_count() > 0 {
            for e in events {
                let _ = tx.send(msg(e));
            }
        }
    }

    /// Something the snapshot holds changed.
    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Whether something changed since the last snapshot.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }

    /// Write the snapshot atomically (temp file, fsync, rename).
    ///
    /// # Errors
    /// The state folder cannot be written.
    pub fn save_snapshot(&self) -> Result<(), SimError> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        self.dirty.store(false, Ordering::Relaxed);
        let snap = lock(&self.exchange).snapshot();
        let err = |e: &dyn std::fmt::Display| SimError::Snapshot {
            path: dir.display().to_string(),
            reason: e.to_string(),
        };
        let bytes = serde_json::to_vec(&snap).map_err(|e| err(&e))?;
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
            f.write_all(&bytes).map_err(|e| err(&e))?;
            f.sync_all().map_err(|e| err(&e))?;
        }
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE)).map_err(|e| err(&e))?;
        Ok(())
    }

    /// A fresh listenKey: 56 random alphanumerics and a sequence number.
    pub(crate) fn new_listen_key(&self) -> String {
        let n = self.listen_key_seq.fetch_add(1, Ordering::Relaxed);
        let mut rng = lock(&self.rng);
        let mut s: String = (0..56)
            .map(|_| {
                let c = rng.random_range(0..62u8);
                char::from(match c {
                    0..=9 => b'0' + c,
                    10..=35 => b'a' + c - 10,
                    _ => b'A' + c - 36,
                })
            })
            .collect();
        s.push_str(&format!("{n:08}"));
        s
    }
}

/// The snapshot in `dir`, if one was written there.
fn load_snapshot(dir: Option<&std::path::Path>) -> Result<Option<Snapshot>, SimError> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let path = dir.join(SNAPSHOT_FILE);
    let err = |e: &dyn std::fmt::Display| SimError::Snapshot {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let snap = serde_json::from_slice(&bytes).map_err(|e| err(&e))?;
            tracing::info!(path = %path.display(), "state restored from snapshot");
            Ok(Some(snap))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(&e)),
    }
}
