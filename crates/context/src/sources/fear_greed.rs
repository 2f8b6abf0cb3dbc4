//! The Crypto Fear & Greed Index of alternative.me: `GET /fng/?limit=N` →
//! `{"name": …, "data": [{"value": "40", "value_classification": "Fear", "timestamp":
//! "1551157200", "time_until_update": "68499"}], "metadata": {"error": null}}`, newest first,
//! one value a day (`timestamp` is the day's 00:00 UTC in seconds); `limit=0` is the whole
//! history.
//!
//! Limit (alternative.me's API page): 60 requests per minute over a 10-minute window. The index
//! changes once a day, so the cache keeps a value for an hour and it stays usable for 26 hours.

use std::time::Duration;

use futures_util::future::BoxFuture;
use qt_events::ContextValue;
use serde_json::Value;

use crate::SourceError;
use crate::http::JsonGet;
use crate::num::{dec, int};
use crate::source::{Limit, Policy, Query, Source};

#[derive(Debug)]
pub struct FearGreed {
    http: JsonGet,
    policy: Policy,
}

impl FearGreed {
    /// A client for `base_url` (e.g. `https://api.alternative.me`).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, SourceError> {
        Ok(Self {
            http: JsonGet::new(base_url, timeout)?,
            policy: default_policy(),
        })
    }

    /// Replaces the default policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The last `limit` daily values (0: all of them), newest first.
    pub async fn history(&self, limit: u32) -> Result<Vec<ContextValue>, SourceError> {
        let v = self.http.get(&format!("/fng/?limit={limit}")).await?;
        parse_fng(&v)
    }
}

/// Reads `/fng/`'s answer (see the module doc). An error in `metadata.error` is a refusal.
pub fn parse_fng(v: &Value) -> Result<Vec<ContextValue>, SourceError> {
    if let Some(e) = v.pointer("/metadata/error").and_then(Value::as_str) {
        return Err(SourceError::Refused {
            status: 200,
            detail: e.chars().take(200).collect(),
        });
    }
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| SourceError::Malformed("fng: no \"data\" array".into()))?;
    data.iter()
        .map(|d| {
            let value = dec(
                d.get("value")
                    .ok_or_else(|| SourceError::Malformed("fng: a row without value".into()))?,
                "value",
            )?;
            let ts = int(
                d.get("timestamp")
                    .ok_or_else(|| SourceError::Malformed("fng: a row without timestamp".into()))?,
                "timestamp",
            )?;
            Ok(ContextValue {
                metric: "fear_greed".into(),
                symbol: None,
                value: Some(value),
                label: d
                    .get("value_classification")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                as_of: Some(ts * 1000),
            })
        })
        .collect()
}

/// The default policy (see the module doc).
pub fn default_policy() -> Policy {
    Policy {
        ttl: Duration::from_secs(3600),
        max_age: Duration::from_secs(26 * 3600),
        backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(3600),
        breaker_failures: 5,
        breaker_open_for: Duration::from_secs(600),
    }
}

impl Source for FearGreed {
    fn name(&self) -> &'static str {
        "fear_greed"
    }

    fn queries(&self) -> Vec<Query> {
        vec![Query::FearGreed]
    }

    fn policy(&self) -> Policy {
        self.policy
    }

    fn limit(&self, _query: &Query) -> (&'static str, Limit) {
        // Half of the published 60/min, leaving room for anything else on the same IP.
        (
            "fear_greed",
            Limit {
                requests: 30,
                per: Duration::from_secs(60),
            },
        )
    }

    fn fetch<'a>(
        &'a self,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<ContextValue>, SourceError>> {
        Box::pin(async move {
            match query {
                Query::FearGreed => {
                    let mut v = self.history(1).await?;
                    v.truncate(1);
                    if v.is_empty() {
                        return Err(SourceError::Malformed("fng: empty data".into()));
                    }
                    Ok(v)
                }
                other => Err(SourceError::Unsupported(other.key())),
            }
        })
    }
}
