//! [`ContextHub`]: every source behind one door — the shared Redis cache with TTLs, request
//! coalescing (in the process and across instances), per-source request budgets, backoff that
//! honours `Retry-After` (shared by every instance), a circuit breaker, and the age of every
//! value.
//!
//! How one [`ContextHub::get`] goes:
//! 1. A cached value younger than the source's `ttl` is served (no upstream request).
//! 2. Callers of one request in this process queue behind one lock, and re-read the cache.
//! 3. If the source is held (a 429's `Retry-After` or a backoff, kept in Redis so every instance
//!    sees it) or its breaker is open, nothing is sent: the cached value is served as what it is.
//! 4. One instance takes the request's lease in Redis; the others wait for the value it writes.
//! 5. The lease holder draws a slot from the request's budget and asks the provider.
//!
//! A value is usable while younger than the source's `max_age`; older, it is served as stale with
//! every value missing. The hub never invents a value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qt_bus::SharedCache;
use qt_events::clock::SharedClock;
use qt_events::{ContextObserved, ContextValue, Freshness};
use serde::{Deserialize, Serialize};

use crate::SourceError;
use crate::breaker::{Breaker, BreakerState};
use crate::pace::Pacer;
use crate::source::{Query, Source};

/// What the cache holds for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    fetched_at: i64,
    values: Vec<ContextValue>,
}

/// The answer to one request: values with their age, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub source: &'static str,
    pub request: String,
    pub fetched_at: Option<i64>,
    pub age_ms: Option<i64>,
    pub freshness: Freshness,
    pub reason: Option<String>,
    pub values: Vec<ContextValue>,
}

impl Reading {
    /// As a `ContextObserved` published at `published_at`.
    pub fn into_event(self, published_at: i64) -> ContextObserved {
        ContextObserved {
            source: self.source.to_string(),
            request: self.request,
            published_at,
            fetched_at: self.fetched_at,
            age_ms: self.fetched_at.map(|f| published_at - f),
            freshness: self.freshness,
            reason: self.reason,
            values: self.values,
        }
    }
}

/// One source's health, for trading-bot's `/health/context`, the dashboard and the logs.
pub use qt_events::api::ContextSourceHealth as SourceHealth;

/// Settings of the hub itself (the sources carry their own [`crate::Policy`]).
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// An upstream request that takes longer is abandoned (a timeout failure).
    pub request_timeout: Duration,
    /// How often an instance waiting for another's fetch looks for the value.
    pub wait_poll: Duration,
    /// The longest `Retry-After` honoured as given (a larger one is cut to this).
    pub max_retry_after: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            wait_poll: Duration::from_millis(25),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    /// The first failure since the last success (cleared by a success).
    failing_since_ms: Option<i64>,
    last_success_ms: Option<i64>,
    last_error: Option<String>,
    last_error_ms: Option<i64>,
    upstream_requests: u64,
}

#[derive(Debug)]
struct SourceSlot {
    source: Arc<dyn Source>,
    breaker: Breaker,
    stats: Mutex<Stats>,
}

/// The market-context sources behind one cache. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct ContextHub {
    slots: Vec<SourceSlot>,
    cache: SharedCache,
    clock: SharedClock,
    cfg: HubConfig,
    pacers: Mutex<HashMap<&'static str, Arc<Pacer>>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    token: String,
    /// When the hub was built: a source never fetched has not been fresh since.
    started_ms: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ContextHub {
    pub fn new(
        sources: Vec<Arc<dyn Source>>,
        cache: SharedCache,
        clock: SharedClock,
        cfg: HubConfig,
    ) -> Self {
        let slots = sources
            .into_iter()
            .map(|source| {
                let p = source.policy();
                SourceSlot {
                    breaker: Breaker::new(p.breaker_failures, p.breaker_open_for),
                    source,
                    stats: Mutex::new(Stats::default()),
                }
            })
            .collect();
        let started_ms = clock.now_ms();
        Self {
            slots,
            cache,
            clock,
            cfg,
            pacers: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            token: uuid::Uuid::now_v7().to_string(),
            started_ms,
        }
    }

    /// Every source's requests of one poll.
    pub fn queries(&self) -> Vec<(&'static str, Query)> {
        self.slots
            .iter()
            .flat_map(|s| {
                let name = s.source.name();
                s.source.queries().into_iter().map(move |q| (name, q))
            })
            .collect()
    }

    /// Every request of every source, as events stamped now.
    pub async fn poll(&self) -> Vec<ContextObserved> {
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            for q in slot.source.queries() {
                let r = self.get_in(i, &q).await;
                out.push(r.into_event(self.clock.now_ms()));
            }
        }
        out
    }

    /// The current values of `query` from the source named `source`.
    pub async fn get(&self, source: &str, query: &Query) -> Option<Reading> {
        let i = self.slots.iter().position(|s| s.source.name() == source)?;
        Some(self.get_in(i, query).await)
    }

    fn cache_key(source: &str, q: &Query) -> String {
        format!("{source}:{}", q.key())
    }

    async fn read(&self, key: &str) -> Option<Record> {
        match self.cache.get(key).await {
            Ok(Some(b)) => match serde_json::from_slice::<Record>(&b) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(key, error = %e, "unreadable context cache entry: ignored");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(key, error = %e, "context cache unavailable");
                None
            }
        }
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    fn pacer(&self, slot: &SourceSlot, q: &Query) -> Arc<Pacer> {
        let (group, limit) = slot.source.limit(q);
        self.pacers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(group)
            .or_insert_with(|| Arc::new(Pacer::new(limit)))
            .clone()
    }

    fn reading(
        &self,
        slot: &SourceSlot,
        q: &Query,
        rec: Option<Record>,
        reason: Option<String>,
    ) -> Reading {
        let now = self.clock.now_ms();
        let name = slot.source.name();
        let max_age = ms(slot.source.policy().max_age);
        match rec {
            None => Reading {
                source: name,
                request: q.key(),
                fetched_at: None,
                age_ms: None,
                freshness: Freshness::Missing,
                reason: reason.or_else(|| Some("never fetched".into())),
                values: Vec::new(),
            },
            Some(r) => {
                let age = now - r.fetched_at;
                let stale = age > max_age;
                let values = if stale {
                    r.values
                        .into_iter()
                        .map(|v| ContextValue { value: None, ..v })
                        .collect()
                } else {
                    r.values
                };
                Reading {
                    source: name,
                    request: q.key(),
                    fetched_at: Some(r.fetched_at),
                    age_ms: Some(age),
                    freshness: if stale {
                        Freshness::Stale
                    } else {
                        Freshness::Fresh
                    },
                    reason: if stale {
                        Some(reason.unwrap_or_else(|| format!("older than {max_age} ms")))
                    } else {
                        reason
                    },
                    values,
                }
            }
        }
    }

    async fn get_in(&self, i: usize, q: &Query) -> Reading {
        let slot = &self.slots[i];
        let name = slot.source.name();
        let policy = slot.source.policy();
        let key = Self::cache_key(name, q);
        let ttl = ms(policy.ttl);
        let fresh =
            |r: &Option<Record>, now: i64| r.as_ref().is_some_and(|r| now - r.fetched_at < ttl);

        let cached = self.read(&key).await;
        if fresh(&cached, self.clock.now_ms()) {
            metrics::counter!("qt_context_cache_hits_total", "source" => name).increment(1);
            return self.reading(slot, q, cached, None);
        }
        let flight = self.flight(&key);
        let _one = flight.lock().await;
        let cached = self.read(&key).await;
        let now = self.clock.now_ms();
        if fresh(&cached, now) {
            metrics::counter!("qt_context_cache_hits_total", "source" => name).increment(1);
            return self.reading(slot, q, cached, None);
        }
        match self.cache.held_for(name).await {
            Ok(Some(left)) => {
                let reason = format!(
                    "{name} held off for {} ms more (rate limit or backoff)",
                    left.as_millis()
                );
                return self.reading(slot, q, cached, Some(reason));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(source = name, error = %e, "context cache unavailable: hold not checked")
            }
        }
        if !slot.breaker.allow(now) {
            return self.reading(slot, q, cached, Some(format!("{name} circuit open")));
        }
        let lease_ttl = self.cfg.request_timeout + Duration::from_secs(2);
        let leased = match self.cache.try_lease(&key, &self.token, lease_ttl).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(source = name, error = %e, "context cache unavailable: fetching without a lease");
                true
            }
        };
        if !leased {
            return self.follow(slot, q, &key, cached, lease_ttl).await;
        }
        let r = self.lead(slot, q, &key, cached).await;
        if let Err(e) = self.cache.release(&key, &self.token).await {
            tracing::debug!(error = %e, "lease not released (it expires by itself)");
        }
        r
    }

    /// Another instance is fetching: wait for the value it writes (or for its lease to go).
    async fn follow(
        &self,
        slot: &SourceSlot,
        q: &Query,
        key: &str,
        before: Option<Record>,
        lease_ttl: Duration,
    ) -> Reading {
        let before_at = before.as_ref().map(|r| r.fetched_at);
        let deadline = tokio::time::Instant::now() + lease_ttl;
        loop {
            tokio::time::sleep(self.cfg.wait_poll).await;
            // Lease first, value second: a value written before the lease went is seen.
            let still = self.cache.leased(key).await.unwrap_or(false);
            let now_rec = self.read(key).await;
            if now_rec.as_ref().map(|r| r.fetched_at) != before_at && now_rec.is_some() {
                metrics::counter!("qt_context_coalesced_total", "source" => slot.source.name())
                    .increment(1);
                return self.reading(slot, q, now_rec, None);
            }
            if !still || tokio::time::Instant::now() >= deadline {
                return self.reading(
                    slot,
                    q,
                    now_rec.or(before),
                    Some("another instance's fetch gave nothing new".into()),
                );
            }
        }
    }

    /// This instance holds the lease: ask the provider within the budget.
    async fn lead(
        &self,
        slot: &SourceSlot,
        q: &Query,
        key: &str,
        cached: Option<Record>,
    ) -> Reading {
        let name = slot.source.name();
        let policy = slot.source.policy();
        let now = self.clock.now_ms();
        if let Err(wait) = self.pacer(slot, q).try_take(now) {
            metrics::counter!("qt_context_budget_exhausted_total", "source" => name).increment(1);
            return self.reading(
                slot,
                q,
                cached,
                Some(format!(
                    "{name} request budget used up; next slot in {} ms",
                    wait.as_millis()
                )),
            );
        }
        {
            let mut s = slot.stats.lock().unwrap_or_else(|p| p.into_inner());
            s.upstream_requests += 1;
        }
        let result =
            match tokio::time::timeout(self.cfg.request_timeout, slot.source.fetch(q)).await {
                Ok(r) => r,
                Err(_) => Err(SourceError::Timeout(self.cfg.request_timeout)),
            };
        let done = self.clock.now_ms();
        match result {
            Ok(values) => {
                metrics::counter!("qt_context_upstream_total", "source" => name, "outcome" => "ok")
                    .increment(1);
                slot.breaker.success();
                let rec = Record {
                    fetched_at: done,
                    values,
                };
                // Redis forgets it well after it is stale; until then it is served as stale.
                let keep = policy.max_age.saturating_mul(4);
                if let Ok(b) = serde_json::to_vec(&rec)
                    && let Err(e) = self.cache.put(key, &b, keep).await
                {
                    tracing::warn!(source = name, error = %e, "context value not cached");
                }
                {
                    let mut s = slot.stats.lock().unwrap_or_else(|p| p.into_inner());
                    s.last_success_ms = Some(done);
                    s.failing_since_ms = None;
                }
                self.reading(slot, q, Some(rec), None)
            }
            Err(e) => {
                metrics::counter!("qt_context_upstream_total", "source" => name, "outcome" => e.kind()).increment(1);
                slot.breaker.failure(done);
                let n = slot.breaker.consecutive_failures().max(1);
                let hold = match &e {
                    SourceError::RateLimited {
                        retry_after: Some(d),
                    } => Some((*d).min(self.cfg.max_retry_after)),
                    SourceError::Refused { .. } | SourceError::Unsupported(_) => None,
                    _ => {
                        let exp = policy.backoff.saturating_mul(1u32 << (n - 1).min(16));
                        Some(exp.min(policy.max_backoff))
                    }
                };
                tracing::warn!(source = name, request = %q, error = %e, hold_ms = hold.map(|h| h.as_millis() as u64), "context source failed");
                if let Some(h) = hold
                    && let Err(err) = self.cache.hold(name, h).await
                {
                    tracing::warn!(source = name, error = %err, "hold not shared");
                }
                {
                    let mut s = slot.stats.lock().unwrap_or_else(|p| p.into_inner());
                    s.last_error = Some(e.to_string());
                    s.last_error_ms = Some(done);
                    s.failing_since_ms.get_or_insert(done);
                }
                self.reading(slot, q, cached, Some(e.to_string()))
            }
        }
    }

    /// Every source's health now: its state, its breaker and hold, and the age of each of its
    /// requests' cached values (read from the shared cache, never fetched).
    pub async fn health(&self) -> Vec<SourceHealth> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for slot in &self.slots {
            let name = slot.source.name();
            let policy = slot.source.policy();
            let held = self.cache.held_for(name).await.ok().flatten();
            let mut requests = Vec::new();
            for q in slot.source.queries() {
                let rec = self.read(&Self::cache_key(name, &q)).await;
                let r = self.reading(slot, &q, rec, None);
                requests.push(qt_events::api::ContextRequestHealth {
                    request: r.request,
                    fetched_at: r.fetched_at,
                    age_ms: r.age_ms,
                    freshness: format!("{:?}", r.freshness).to_uppercase(),
                    values: r
                        .values
                        .iter()
                        .filter_map(|v| {
                            let key = match &v.symbol {
                                Some(sym) => format!("{}:{sym}", v.metric),
                                None => v.metric.clone(),
                            };
                            v.value.map(|x| (key, x.to_string()))
                        })
                        .collect(),
                });
            }
            let s = slot.stats.lock().unwrap_or_else(|p| p.into_inner());
            let breaker = slot.breaker.state(now);
            let held_ms = held.map(|h| u64::try_from(h.as_millis()).unwrap_or(u64::MAX));
            let oldest_fetch = requests
                .iter()
                .map(|r| r.fetched_at)
                .try_fold(i64::MAX, |m, f| f.map(|f| m.min(f)));
            let stale = requests.iter().any(|r| r.freshness != "FRESH");
            let state = match breaker {
                _ if held_ms.is_some_and(|h| h > 0) => "held",
                BreakerState::Open { .. } => "breaker_open",
                BreakerState::HalfOpen => "half_open",
                BreakerState::Closed if stale => "stale",
                BreakerState::Closed if s.failing_since_ms.is_some() => "failing",
                BreakerState::Closed => "fresh",
            };
            // Not fresh since the earliest of: its first failure since the last success, the
            // time its oldest value went stale, the start when a request was never fetched.
            let stale_since = match oldest_fetch {
                None => Some(self.started_ms),
                Some(f) if stale => Some(f.saturating_add(ms(policy.max_age))),
                Some(_) => None,
            };
            let since = [s.failing_since_ms, stale_since]
                .into_iter()
                .flatten()
                .min()
                .filter(|_| state != "fresh");
            out.push(SourceHealth {
                source: name.to_string(),
                state: state.to_string(),
                last_success_ms: s.last_success_ms,
                last_error: s.last_error.clone(),
                last_error_ms: s.last_error_ms,
                consecutive_failures: slot.breaker.consecutive_failures(),
                breaker: match breaker {
                    BreakerState::Closed => "closed",
                    BreakerState::Open { .. } => "open",
                    BreakerState::HalfOpen => "half_open",
                }
                .to_string(),
                breaker_open_until_ms: match breaker {
                    BreakerState::Open { until_ms } => Some(until_ms),
                    _ => None,
                },
                held_for_ms: held_ms,
                held_until_ms: held_ms
                    .map(|h| now.saturating_add(i64::try_from(h).unwrap_or(i64::MAX))),
                upstream_requests: s.upstream_requests,
                oldest_value_age_ms: oldest_fetch.map(|f| now - f),
                unhealthy_for_ms: since.map(|t| (now - t).max(0)),
                requests,
            });
        }
        out
    }
}
