//! Stream and group statistics for metrics, readiness and `qtctl streams`.

use redis::Value;

use crate::BusError;
use crate::raw;

/// The most entries counted when Redis does not know a group's lag.
pub const LAG_COUNT_CAP: u64 = 10_000;

/// One consumer group of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub name: String,
    pub consumers: u64,
    /// Entries delivered and not yet acknowledged.
    pub pending: u64,
    pub last_delivered_id: String,
    /// Entries not yet delivered to the group. Redis forgets it after reloading its AOF; it is
    /// then counted from the stream, up to [`LAG_COUNT_CAP`] (`None` only if that fails).
    pub lag: Option<u64>,
}

/// A stream's length and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub key: String,
    pub length: u64,
    pub groups: Vec<GroupStats>,
}

pub(crate) async fn stream_stats<C: redis::aio::ConnectionLike + Send>(
    c: &mut C,
    key: &str,
) -> Result<StreamStats, BusError> {
    let length: u64 = redis::cmd("XLEN").arg(key).query_async(c).await?;
    let groups = if length == 0 {
        // XINFO GROUPS fails on a missing key; a stream made by MKSTREAM has length 0 but exists.
        let exists: u64 = redis::cmd("EXISTS").arg(key).query_async(c).await?;
        if exists == 0 {
            Vec::new()
        } else {
            groups(c, key).await?
        }
    } else {
        groups(c, key).await?
    };
    Ok(StreamStats {
        key: key.to_owned(),
        length,
        groups,
    })
}

async fn groups<C: redis::aio::ConnectionLike + Send>(
    c: &mut C,
    key: &str,
) -> Result<Vec<GroupStats>, BusError> {
    let v: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(c)
        .await?;
    let mut out = Vec::new();
    for g in raw::list(v)? {
        let mut s = GroupStats {
            name: String::new(),
            consumers: 0,
            pending: 0,
            last_delivered_id: "0-0".into(),
            lag: None,
        };
        for (k, v) in raw::kv(g)? {
            match k.as_str() {
                "name" => s.name = raw::string(v)?,
                "consumers" => {
                    s.consumers = raw::int(&v)
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0)
                }
                "pending" => {
                    s.pending = raw::int(&v)
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0)
                }
                "last-delivered-id" => s.last_delivered_id = raw::string(v)?,
                "lag" => s.lag = raw::int(&v).and_then(|n| u64::try_from(n).ok()),
                _ => {}
            }
        }
        if s.lag.is_none() {
            let v: Result<Value, _> = redis::cmd("XRANGE")
                .arg(key)
                .arg(format!("({}", s.last_delivered_id))
                .arg("+")
                .arg("COUNT")
                .arg(LAG_COUNT_CAP)
                .query_async(c)
                .await;
            s.lag = v
                .ok()
                .and_then(|v| raw::list(v).ok())
                .map(|l| l.len() as u64);
        }
        out.push(s);
    }
    Ok(out)
}
