//! The consumer-group runner.
//!
//! One task per (stream, group, consumer). Order of work in its loop:
//! 1. (re)connect a dedicated connection whose response timeout is above the BLOCK time, and
//!    create the group (idempotent) — again after every reconnect, since Redis may have lost it;
//! 2. every `janitor_interval`, `XAUTOCLAIM … JUSTID` entries idle longer than `claim_min_idle`
//!    (left by a dead instance, or by this one after a transient failure): they become this
//!    consumer's own pending entries, without counting a delivery;
//! 3. read its own pending entries one at a time (id `0`, paging forward) until none are left,
//!    then new ones (`>`) with `BLOCK`;
//! 4. handle the batch entry by entry (a laned consumer: the entries of different symbols at
//!    once, each symbol's in order), then commit in one `MULTI`: what the handlers produced, in
//!    the stream's order, the dead letters, and the `XACK` of every entry that succeeded or was
//!    dead-lettered.
//!
//! An entry that fails transiently stays pending and comes back soon: the consumer re-reads its
//! own pending entries `retry_after` later (doubling while they keep failing, up to
//! `claim_min_idle`), handling newer entries meanwhile — or when the handler asked for it
//! (`HandlerError::Later`, without the doubling); a dead peer's entries come back through
//! the janitor. Once an entry has been delivered more than `max_deliveries` times, and is older
//! than `poison_min_age`, it is dead-lettered. Redis counts a delivery each time an entry is read, so pending entries are
//! re-read one by one: a crash while handling entry k of a batch then counts against entry k
//! only, never against the entries behind it that no handler reached (reading them all again on
//! every restart would dead-letter good entries of a service killed a few times in a row).
//! Nothing an entry contains can stop the loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Connection;
use qt_events::{DeadLettered, Envelope, Event, RawField, Stream};
use redis::Value;
use tokio_util::sync::CancellationToken;

use crate::error::backoff;
use crate::publisher::{ensure_group, xadd_cmd};
use crate::raw::{self, RawEntry};
use crate::{Bus, BusError};

/// How a consumer group is read.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub stream: Stream,
    /// The group: the service name.
    pub group: String,
    /// The consumer: stable per instance (`service-instance`), so a restarted instance finds its
    /// own pending entries.
    pub consumer: String,
    /// Entries per read.
    pub batch_size: usize,
    /// How long a read for new entries blocks.
    pub block: Duration,
    /// Entries pending longer than this are claimed by the janitor.
    pub claim_min_idle: Duration,
    pub janitor_interval: Duration,
    /// Deliveries after which a still-failing entry is dead-lettered…
    pub max_deliveries: u64,
    /// …once it is at least this old (by its entry id's time). A handler that legitimately
    /// takes seconds (an order whose outcome is unknown waits out the exchange's receive
    /// window) must not be dead-lettered because its service was killed a few times in a row
    /// while it ran; a real poison entry is retried this long before it goes to `dlq`.
    pub poison_min_age: Duration,
    /// Attempts within one delivery before a transient failure is left for later.
    pub handler_attempts: u32,
    /// How long after a transient failure the entries left pending are read again (doubled
    /// while they keep failing, at most `claim_min_idle`).
    pub retry_after: Duration,
}

impl ConsumerConfig {
    pub fn new(stream: Stream, group: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            stream,
            group: group.into(),
            consumer: consumer.into(),
            batch_size: 256,
            block: Duration::from_secs(2),
            claim_min_idle: Duration::from_secs(30),
            janitor_interval: Duration::from_secs(5),
            max_deliveries: 5,
            poison_min_age: Duration::from_secs(60),
            handler_attempts: 3,
            retry_after: Duration::from_secs(1),
        }
    }
}

/// What a batch left pending.
#[derive(Debug, Default)]
struct LeftPending {
    /// An entry failed transiently (read again after the doubling `retry_after`).
    failed: bool,
    /// The earliest time a handler asked to see an entry again (`HandlerError::Later`).
    asked_at: Option<Instant>,
}

/// One entry handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub stream: Stream,
    /// The entry id in the stream.
    pub entry_id: String,
    pub envelope: Envelope,
    /// How many times this entry has been delivered to the group (1 the first time).
    pub deliveries: u64,
}

/// What a handler produced: events published atomically with the entry's acknowledgement.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub publish: Vec<Envelope>,
}

impl Outcome {
    /// Handled; nothing to publish.
    pub fn done() -> Self {
        Self::default()
    }
    /// Handled; publish these with the ack.
    pub fn publish(envelopes: Vec<Envelope>) -> Self {
        Self { publish: envelopes }
    }
}

/// Why a handler did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (a database or the exchange unreachable): retried, then left pending.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (the entry is invalid for this handler): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Cannot be done now and retrying at once would not help (a budget used up until a known
    /// time): not retried in place; the entry stays pending and is read again after
    /// `retry_in`, newer entries being handled meanwhile. Each reading counts a delivery, so a
    /// handler must give a final answer before the entry is `poison_min_age` old.
    #[error("later ({retry_in:?}): {reason}")]
    Later { reason: String, retry_in: Duration },
}

/// A service's reaction to the entries of one stream.
pub trait Handler: Send + Sync + 'static {
    /// Handles one entry. Must be idempotent: an entry may be delivered more than once (after a
    /// crash, a claim or a lost ack); drop duplicates by `delivery.envelope.id`.
    fn handle(
        &mut self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Outcome, HandlerError>> + Send;
}

/// Observes a running consumer (for readiness).
#[derive(Debug, Clone, Default)]
pub struct ConsumerHandle {
    ready: Arc<AtomicBool>,
}

impl ConsumerHandle {
    /// True once the group exists and the consumer has connected.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

enum Phase {
    /// Re-reading own pending entries after this cursor.
    History(String),
    New,
}

/// Runs one consumer group with a [`Handler`].
#[derive(Debug)]
pub struct Consumer<H> {
    bus: Bus,
    cfg: ConsumerConfig,
    /// One handler per lane (one lane unless built with [`Consumer::laned`]).
    handlers: Vec<H>,
    key: String,
    handle: ConsumerHandle,
    /// Last transient error per pending entry, for the dead letter's reason.
    last_errors: HashMap<String, String>,
    labels: [(&'static str, String); 2],
}

impl<H: Handler + Clone> Consumer<H> {
    /// A consumer that hands the entries of a batch about different symbols (the decoded
    /// event's) to up to `lanes` copies of `handler` at once: each symbol of the batch gets one
    /// lane, and a lane handles its entries in the stream's order, so the entries of one symbol
    /// keep theirs; entries without a symbol go to the first lane. The batch is committed when
    /// every lane is done, as with one lane. The handler must be safe to run concurrently with
    /// itself on different symbols.
    pub fn laned(bus: Bus, cfg: ConsumerConfig, handler: H, lanes: usize) -> Self {
        let mut c = Self::new(bus, cfg, handler.clone());
        c.handlers
            .extend(std::iter::repeat_n(handler, lanes.max(1) - 1));
        c
    }
}

impl<H: Handler> Consumer<H> {
    pub fn new(bus: Bus, cfg: ConsumerConfig, handler: H) -> Self {
        let key = bus.key(cfg.stream);
        let labels = [
            ("stream", cfg.stream.suffix().to_owned()),
            ("group", cfg.group.clone()),
        ];
        Self {
            bus,
            cfg,
            handlers: vec![handler],
            key,
            handle: ConsumerHandle::default(),
            last_errors: HashMap::new(),
            labels,
        }
    }

    pub fn handle(&self) -> ConsumerHandle {
        self.handle.clone()
    }

    /// Runs until `shutdown` is cancelled; the entry in hand is finished, and what the batch has
    /// handled so far is committed and acknowledged, before it returns.
    /// Redis being unreachable is waited out, never returned.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut conn: Option<Connection> = None;
        let mut phase = Phase::History("0-0".into());
        let mut next_janitor = Instant::now();
        let mut failures: u32 = 0;
        // Entries left pending by a transient failure are read again at `retry_at`.
        let mut retry_at: Option<Instant> = None;
        let mut retry_delay = self.cfg.retry_after;
        let mut deferred_in_pass = false;
        tracing::info!(stream = %self.key, group = %self.cfg.group, consumer = %self.cfg.consumer, "consumer starting");
        while !shutdown.is_cancelled() {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => {
                        failures = 0;
                        // After a reconnect, our own pending entries may be waiting.
                        phase = Phase::History("0-0".into());
                        conn.insert(c)
                    }
                    Err(e) => {
                        self.handle.ready.store(false, Ordering::Relaxed);
                        tracing::warn!(error = %e, stream = %self.key, "consumer cannot reach redis, retrying");
                        sleep_or_cancel(backoff(failures, Duration::from_secs(5)), &shutdown).await;
                        failures = failures.saturating_add(1);
                        continue;
                    }
                },
            };
            self.handle.ready.store(true, Ordering::Relaxed);

            if Instant::now() >= next_janitor {
                next_janitor = Instant::now() + self.cfg.janitor_interval;
                match self.janitor(c).await {
                    Ok(0) => {}
                    // What it took over is read from the start of the own pending list.
                    Ok(_) => phase = Phase::History("0-0".into()),
                    Err(e) => {
                        tracing::warn!(error = %e, stream = %self.key, "janitor failed");
                        conn = None;
                        continue;
                    }
                }
            }

            if let Some(at) = retry_at
                && matches!(phase, Phase::New)
                && Instant::now() >= at
            {
                retry_at = None;
                phase = Phase::History("0-0".into());
            }
            let read = match &phase {
                Phase::History(cursor) => self.read(c, cursor, 1, None).await,
                Phase::New => {
                    // Wake in time for a retry that is due.
                    let block = retry_at.map_or(self.cfg.block, |at| {
                        at.saturating_duration_since(Instant::now())
                            .clamp(Duration::from_millis(1), self.cfg.block)
                    });
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        r = self.read(c, ">", self.cfg.batch_size, Some(block)) => r,
                    }
                }
            };
            match read {
                Ok(batch) => {
                    if let Phase::History(cursor) = &mut phase {
                        match batch.last() {
                            None => {
                                // A pass over the own pending entries ended: retry sooner
                                // next time if nothing failed again in it.
                                if !deferred_in_pass {
                                    retry_delay = self.cfg.retry_after;
                                }
                                deferred_in_pass = false;
                                phase = Phase::New;
                                continue;
                            }
                            Some(last) => cursor.clone_from(&last.id),
                        }
                    }
                    let from_history = matches!(phase, Phase::History(_));
                    let left = self.process(c, batch, from_history, &shutdown).await;
                    if left.failed {
                        deferred_in_pass |= from_history;
                        if retry_at.is_none() {
                            retry_at = Some(Instant::now() + retry_delay);
                            retry_delay = (retry_delay * 2).min(self.cfg.claim_min_idle);
                        }
                    }
                    if let Some(at) = left.asked_at {
                        retry_at = Some(retry_at.map_or(at, |r| r.min(at)));
                    }
                }
                Err(e) => {
                    if matches!(&e, BusError::Refused(r) if r.code() == Some("NOGROUP")) {
                        tracing::warn!(stream = %self.key, group = %self.cfg.group, "group vanished (redis lost data?), recreating");
                    } else {
                        tracing::warn!(error = %e, stream = %self.key, "read failed, reconnecting");
                    }
                    conn = None;
                    sleep_or_cancel(backoff(failures, Duration::from_secs(5)), &shutdown).await;
                    failures = failures.saturating_add(1);
                }
            }
        }
        self.handle.ready.store(false, Ordering::Relaxed);
        tracing::info!(stream = %self.key, group = %self.cfg.group, "consumer stopped");
    }

    async fn connect(&self) -> Result<Connection, BusError> {
        let mut c = self
            .bus
            .dedicated(self.cfg.block + Duration::from_secs(5))
            .await?;
        ensure_group(&mut c, &self.key, &self.cfg.group).await?;
        Ok(c)
    }

    async fn read(
        &self,
        c: &mut Connection,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<RawEntry>, BusError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK")
                .arg(u64::try_from(b.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        cmd.arg("STREAMS").arg(&self.key).arg(id);
        let v: Value = cmd.query_async(c).await?;
        raw::read_reply(v)
    }

    /// Takes over entries idle too long (`JUSTID`: no delivery is counted; the own-pending read
    /// that handles them counts it) and refreshes the pending and lag gauges. Returns how many
    /// entries it took over.
    async fn janitor(&mut self, c: &mut Connection) -> Result<usize, BusError> {
        let mut cursor = "0-0".to_owned();
        let idle = u64::try_from(self.cfg.claim_min_idle.as_millis()).unwrap_or(u64::MAX);
        let mut taken = 0;
        // Bounded: a pass looks at most at 10 pages.
        for _ in 0..10 {
            let v: Value = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(&self.cfg.group)
                .arg(&self.cfg.consumer)
                .arg(idle)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.cfg.batch_size)
                .arg("JUSTID")
                .query_async(c)
                .await?;
            let (next, claimed, deleted) = raw::autoclaim_reply(v)?;
            if !deleted.is_empty() {
                tracing::warn!(stream = %self.key, count = deleted.len(), "pending entries were trimmed before they were handled");
            }
            if !claimed.is_empty() {
                tracing::info!(stream = %self.key, count = claimed.len(), "claimed idle pending entries");
                metrics::counter!("qt_bus_claimed_total", &self.labels)
                    .increment(claimed.len() as u64);
                taken += claimed.len();
            }
            if next == "0-0" {
                break;
            }
            cursor = next;
        }
        let stats = crate::stats::stream_stats(c, &self.key).await?;
        if let Some(g) = stats.groups.iter().find(|g| g.name == self.cfg.group) {
            metrics::gauge!("qt_bus_pending", &self.labels).set(g.pending as f64);
            metrics::gauge!("qt_bus_lag", &self.labels).set(g.lag.unwrap_or(0) as f64);
        }
        Ok(taken)
    }

    /// Delivery counts of entries this consumer owns, from `XPENDING`.
    async fn counts(&self, c: &mut Connection, batch: &[RawEntry]) -> HashMap<String, u64> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return HashMap::new();
        };
        let r: Result<Value, _> = redis::cmd("XPENDING")
            .arg(&self.key)
            .arg(&self.cfg.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(batch.len())
            .arg(&self.cfg.consumer)
            .query_async(c)
            .await;
        r.map_err(BusError::from)
            .and_then(raw::pending_counts)
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    }

    /// Handles a batch and commits it; says what it left pending for later.
    async fn process(
        &mut self,
        c: &mut Connection,
        batch: Vec<RawEntry>,
        redelivered: bool,
        shutdown: &CancellationToken,
    ) -> LeftPending {
        let mut left = LeftPending::default();
        if batch.is_empty() {
            return left;
        }
        let counts = if redelivered {
            self.counts(c, &batch).await
        } else {
            HashMap::new()
        };
        let mut acks: Vec<String> = Vec::with_capacity(batch.len());
        let mut publish: Vec<Envelope> = Vec::new();
        let mut dead: Vec<(RawEntry, String, u64)> = Vec::new();
        // What no handler needs to see is settled here; the rest is handed to the lanes.
        let mut jobs: Vec<Vec<Job>> = (0..self.handlers.len()).map(|_| Vec::new()).collect();
        // Each symbol of the batch gets a lane, in turn (the lanes last one batch: one symbol's
        // entries, all in one lane, keep their order); entries without a symbol go to the first.
        let mut lanes_of: HashMap<String, usize> = HashMap::new();
        for entry in batch {
            let deliveries = counts.get(&entry.id).copied().unwrap_or(1);
            if entry.fields.is_none() {
                tracing::warn!(stream = %self.key, entry_id = %entry.id, "pending entry has no payload (trimmed); acknowledging");
                acks.push(entry.id);
                continue;
            }
            let envelope = match Envelope::from_fields(entry.field_pairs()) {
                Ok(e) => e,
                Err(e) => {
                    let reason = format!("undecodable: {e}");
                    dead.push((entry, reason, deliveries));
                    continue;
                }
            };
            // Age by the entry id's time; an id that does not parse counts as old.
            let age_ms = raw::parse_id(&entry.id)
                .and_then(|(ms, _)| i64::try_from(ms).ok())
                .map_or(i64::MAX, |ms| self.bus.clock().now_ms().saturating_sub(ms));
            let old_enough =
                age_ms >= i64::try_from(self.cfg.poison_min_age.as_millis()).unwrap_or(i64::MAX);
            if deliveries > self.cfg.max_deliveries && old_enough {
                let last = self
                    .last_errors
                    .remove(&entry.id)
                    .unwrap_or_else(|| "handler did not finish (crash or timeout)".into());
                dead.push((
                    entry,
                    format!("failed {deliveries} deliveries; last error: {last}"),
                    deliveries,
                ));
                continue;
            }
            let lane = match envelope.event.symbol() {
                Some(sym) if jobs.len() > 1 => {
                    let next = lanes_of.len() % jobs.len();
                    *lanes_of.entry(sym.to_owned()).or_insert(next)
                }
                _ => 0,
            };
            let delivery = Delivery {
                stream: self.cfg.stream,
                entry_id: entry.id.clone(),
                envelope,
                deliveries,
            };
            jobs[lane].push(Job { entry, delivery });
        }
        let lanes = self
            .handlers
            .iter_mut()
            .zip(jobs)
            .filter(|(_, jobs)| !jobs.is_empty())
            .map(|(handler, jobs)| {
                run_lane(handler, jobs, &self.cfg, &self.key, &self.labels, shutdown)
            });
        let mut done: Vec<(RawEntry, u64, Handled)> = futures_util::future::join_all(lanes)
            .await
            .into_iter()
            .flatten()
            .collect();
        // Outcomes go out in the stream's order, whichever lane finished first.
        done.sort_by_key(|(entry, _, _)| raw::parse_id(&entry.id));
        for (entry, deliveries, handled) in done {
            match handled {
                Handled::Done(outcome) => {
                    metrics::counter!("qt_bus_handled_total", &self.labels).increment(1);
                    self.last_errors.remove(&entry.id);
                    publish.extend(outcome.publish);
                    acks.push(entry.id);
                }
                Handled::Rejected(msg) => {
                    dead.push((entry, format!("rejected by handler: {msg}"), deliveries));
                }
                Handled::Failed(msg) => {
                    self.remember_error(entry.id, msg);
                    left.failed = true;
                }
                Handled::Later(reason, at) => {
                    self.remember_error(entry.id, reason);
                    left.asked_at = Some(left.asked_at.map_or(at, |a| a.min(at)));
                }
            }
        }
        self.commit(acks, publish, dead, shutdown).await;
        left
    }

    /// Keeps an entry's last error for its dead letter, should it come to that.
    fn remember_error(&mut self, entry_id: String, error: String) {
        if self.last_errors.len() > 10_000 {
            self.last_errors.clear();
        }
        self.last_errors.insert(entry_id, error);
    }

    /// Publishes, dead-letters and acknowledges in one transaction, retrying while Redis is
    /// unreachable. If it cannot (shutdown), the entries stay pending and come back.
    async fn commit(
        &mut self,
        acks: Vec<String>,
        publish: Vec<Envelope>,
        dead: Vec<(RawEntry, String, u64)>,
        shutdown: &CancellationToken,
    ) {
        if acks.is_empty() && publish.is_empty() && dead.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for env in &publish {
            pipe.add_command(self.bus.xadd(env)).ignore();
        }
        let mut ids = acks;
        for (entry, reason, deliveries) in &dead {
            tracing::error!(stream = %self.key, entry_id = %entry.id, %reason, "dead-lettering entry");
            let letter = DeadLettered {
                stream: self.key.clone(),
                entry_id: entry.id.clone(),
                group: self.cfg.group.clone(),
                consumer: self.cfg.consumer.clone(),
                reason: reason.clone(),
                deliveries: *deliveries,
                fields: entry
                    .fields
                    .iter()
                    .flatten()
                    .map(|(k, v)| RawField {
                        name: String::from_utf8_lossy(k).into_owned(),
                        value: v.clone(),
                    })
                    .collect(),
            };
            let env = self.bus.envelope(Event::DeadLettered(letter));
            let extra = [
                ("reason", reason.as_str()),
                ("origin_stream", self.key.as_str()),
                ("origin_id", entry.id.as_str()),
            ];
            pipe.add_command(xadd_cmd(
                self.bus.names(),
                Stream::Dlq,
                &env.to_fields(),
                &extra,
            ))
            .ignore();
            ids.push(entry.id.clone());
        }
        if !ids.is_empty() {
            pipe.cmd("XACK")
                .arg(&self.key)
                .arg(&self.cfg.group)
                .arg(&ids)
                .ignore();
        }
        let mut attempt = 0;
        loop {
            let mut conn = self.bus.connection();
            let r: Result<(), redis::RedisError> = pipe.query_async(&mut conn).await;
            match r {
                Ok(()) => break,
                Err(e) => {
                    let e = BusError::from(e);
                    if !e.is_retryable() || (shutdown.is_cancelled() && attempt > 3) {
                        tracing::error!(error = %e, stream = %self.key, count = ids.len(), "commit failed; entries stay pending and will be redelivered");
                        return;
                    }
                    tracing::warn!(error = %e, attempt, "commit failed, retrying");
                    tokio::time::sleep(backoff(attempt, Duration::from_secs(2))).await;
                    if let Err(e) = self.bus.follow_master().await {
                        tracing::warn!(error = %e, "asking the sentinels for the master failed");
                    }
                    attempt += 1;
                }
            }
        }
        if !dead.is_empty() {
            metrics::counter!("qt_bus_dead_lettered_total", &self.labels)
                .increment(dead.len() as u64);
        }
    }
}

/// An entry for a handler.
struct Job {
    entry: RawEntry,
    delivery: Delivery,
}

/// How a handler finished with an entry.
enum Handled {
    Done(Outcome),
    /// Permanent failure: the reason.
    Rejected(String),
    /// Transient failure after the attempts of this delivery: the last error.
    Failed(String),
    /// The handler asked to see it again at this time: the reason.
    Later(String, Instant),
}

/// Handles one lane's entries in order with its handler, stopping after the entry in hand on
/// shutdown (what is left stays pending and is read again on the next start, so a long batch
/// cannot hold a shutdown past the supervisor's grace period).
async fn run_lane<H: Handler>(
    handler: &mut H,
    jobs: Vec<Job>,
    cfg: &ConsumerConfig,
    key: &str,
    labels: &[(&'static str, String); 2],
    shutdown: &CancellationToken,
) -> Vec<(RawEntry, u64, Handled)> {
    let mut done = Vec::with_capacity(jobs.len());
    for Job { entry, delivery } in jobs {
        if shutdown.is_cancelled() {
            break;
        }
        let env = &delivery.envelope;
        let span = tracing::info_span!("handle", event_id = %env.id, corr = %env.corr, event_type = env.type_name(), entry_id = %entry.id);
        crate::trace::set_parent(&span, env.traceparent.as_deref());
        let deliveries = delivery.deliveries;
        let mut attempt = 0;
        let handled = loop {
            let r = tracing::Instrument::instrument(handler.handle(&delivery), span.clone()).await;
            match r {
                Ok(outcome) => break Handled::Done(outcome),
                Err(HandlerError::Permanent(msg)) => {
                    metrics::counter!("qt_bus_failed_total", labels).increment(1);
                    break Handled::Rejected(msg);
                }
                Err(HandlerError::Transient(msg)) => {
                    metrics::counter!("qt_bus_failed_total", labels).increment(1);
                    attempt += 1;
                    if attempt >= cfg.handler_attempts || shutdown.is_cancelled() {
                        tracing::warn!(stream = %key, entry_id = %entry.id, deliveries, error = %msg, "handler failed; entry stays pending for a later delivery");
                        break Handled::Failed(msg);
                    }
                    tokio::time::sleep(backoff(attempt, Duration::from_secs(2))).await;
                }
                Err(HandlerError::Later { reason, retry_in }) => {
                    tracing::debug!(stream = %key, entry_id = %entry.id, deliveries, retry_in_ms = retry_in.as_millis(), reason = %reason, "entry deferred");
                    break Handled::Later(reason, Instant::now() + retry_in);
                }
            }
        };
        done.push((entry, deliveries, handled));
    }
    done
}

async fn sleep_or_cancel(d: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = shutdown.cancelled() => {}
    }
}
