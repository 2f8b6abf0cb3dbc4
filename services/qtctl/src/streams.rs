//! `streams` and `tail`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use qt_bus::{Bus, BusConfig, RawEntry};
use qt_events::{Envelope, Stream, StreamNames};
use serde_json::{Value, json};

pub struct Ctx {
    pub bus: Bus,
    pub json: bool,
    sentinel_error: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// The stream: `market`, `qt:orders`, …
    stream: String,
    /// How many of the latest entries to print first.
    #[arg(short = 'n', long, default_value_t = 10)]
    count: usize,
    /// Keep printing new entries as they arrive (Ctrl-C to stop).
    #[arg(short, long)]
    follow: bool,
}

/// Where the deployment's Redis is: a server, the master a set of Sentinels names, or a
/// cluster.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub url: String,
    pub sentinels: Vec<String>,
    pub master_name: String,
    pub cluster: Vec<String>,
}

impl Ctx {
    /// Builds the bus; with Sentinels, asks them for the master first (the bus would otherwise
    /// start on --redis-url's address). A Sentinel failure is kept for [`Ctx::check_redis`].
    pub async fn new(redis: &RedisTarget, prefix: &str, json: bool) -> anyhow::Result<Self> {
        let mut cfg = BusConfig::new(redis.url.as_str(), StreamNames::new(prefix), "qtctl");
        cfg.retry_for = Duration::from_secs(2);
        cfg.sentinels.clone_from(&redis.sentinels);
        cfg.master_name.clone_from(&redis.master_name);
        cfg.cluster.clone_from(&redis.cluster);
        let bus = Bus::connect(cfg, qt_events::clock::system())?;
        let sentinel_error = if redis.sentinels.is_empty() {
            None
        } else {
            bus.follow_master().await.err().map(|e| {
                format!(
                    "no Sentinel named the master {:?} (QT_REDIS_SENTINELS / --redis-sentinels, \
                     QT_REDIS_MASTER_NAME / --redis-master-name): {e}",
                    redis.master_name
                )
            })
        };
        Ok(Self {
            bus,
            json,
            sentinel_error,
        })
    }

    /// Fails unless Redis answers.
    pub async fn check_redis(&self) -> anyhow::Result<()> {
        if let Some(e) = &self.sentinel_error {
            anyhow::bail!("{e}");
        }
        if !self.bus.reachable(Duration::from_secs(2)).await {
            if self.bus.is_cluster() {
                anyhow::bail!(
                    "the redis cluster is unreachable (QT_REDIS_CLUSTER / --redis-cluster)"
                );
            }
            anyhow::bail!("redis is unreachable (QT_REDIS_URL / --redis-url)");
        }
        Ok(())
    }

    pub async fn streams(&self) -> anyhow::Result<()> {
        self.check_redis().await?;
        let mut rows = Vec::new();
        for s in Stream::ALL {
            let st = self
                .bus
                .stats(s)
                .await
                .with_context(|| format!("reading {}", self.bus.key(s)))?;
            rows.push(st);
        }
        let mut out = std::io::stdout().lock();
        if self.json {
            let v: Vec<Value> = rows
                .iter()
                .map(|s| {
                    json!({
                        "stream": s.key,
                        "length": s.length,
                        "groups": s.groups.iter().map(|g| json!({
                            "name": g.name, "consumers": g.consumers, "pending": g.pending,
                            "lag": g.lag, "last_delivered_id": g.last_delivered_id,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            return Ok(());
        }
        writeln!(
            out,
            "{:<22} {:>9}  {:<24} {:>9} {:>9} {:>9}",
            "STREAM", "LENGTH", "GROUP", "CONSUMERS", "PENDING", "LAG"
        )?;
        for s in &rows {
            if s.groups.is_empty() {
                writeln!(
                    out,
                    "{:<22} {:>9}  {:<24} {:>9} {:>9} {:>9}",
                    s.key, s.length, "-", "-", "-", "-"
                )?;
            }
            for (i, g) in s.groups.iter().enumerate() {
                let (k, l) = if i == 0 {
                    (s.key.as_str(), s.length.to_string())
                } else {
                    ("", String::new())
                };
                let lag = g.lag.map_or_else(|| "?".to_owned(), |l| l.to_string());
                writeln!(
                    out,
                    "{:<22} {:>9}  {:<24} {:>9} {:>9} {:>9}",
                    k, l, g.name, g.consumers, g.pending, lag
                )?;
            }
        }
        Ok(())
    }

    pub async fn tail(&self, args: TailArgs) -> anyhow::Result<()> {
        let stream = self.bus.names().parse(&args.stream).with_context(|| {
            format!(
                "unknown stream {:?}; one of: {}",
                args.stream,
                Stream::ALL.map(|s| s.suffix()).join(", ")
            )
        })?;
        self.check_redis().await?;
        let key = self.bus.key(stream);
        let entries = self.bus.last(&key, args.count).await?;
        let mut last = entries
            .last()
            .map_or_else(|| "$".to_owned(), |e| e.id.clone());
        for e in &entries {
            print_entry(e)?;
        }
        if !args.follow {
            return Ok(());
        }
        let mut conn = self.bus.dedicated(Duration::from_secs(10)).await?;
        loop {
            let batch = tokio::select! {
                r = Bus::read_after(&mut conn, &key, &last, Duration::from_secs(5), 100) => r?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            for e in &batch {
                print_entry(e)?;
            }
            if let Some(e) = batch.last() {
                last.clone_from(&e.id);
            }
        }
    }
}

/// One entry as a JSON line: the envelope with its payload, or the raw fields and the reason it
/// cannot be decoded.
pub fn entry_json(e: &RawEntry) -> Value {
    match Envelope::from_fields(e.field_pairs()) {
        Ok(env) => {
            let mut v = env.to_json();
            v["entry_id"] = json!(e.id);
            v
        }
        Err(err) => {
            let fields: serde_json::Map<String, Value> = e
                .field_pairs()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        json!(String::from_utf8_lossy(v)),
                    )
                })
                .collect();
            json!({ "entry_id": e.id, "undecodable": err.to_string(), "fields": fields })
        }
    }
}

fn print_entry(e: &RawEntry) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", entry_json(e))?;
    out.flush()?;
    Ok(())
}
