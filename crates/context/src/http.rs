//! GET a provider's JSON with a timeout, classifying every failure ([`SourceError`]).

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::SourceError;

/// A reqwest client for one provider: base URL, timeout and optional extra header (an API key,
/// never logged).
#[derive(Clone)]
pub struct JsonGet {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    header: Option<(&'static str, reqwest::header::HeaderValue)>,
}

impl std::fmt::Debug for JsonGet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonGet")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("header", &self.header.as_ref().map(|(n, _)| *n))
            .finish()
    }
}

impl JsonGet {
    /// A client for `base` (e.g. `https://api.coingecko.com`), answers within `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, SourceError> {
        qt_exchange::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent("quantum-trader-context")
            .build()
            .map_err(|e| SourceError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            timeout,
            header: None,
        })
    }

    /// Sends `name: value` with every request (marked sensitive: never in logs or `Debug`).
    pub fn with_secret_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(mut v) = reqwest::header::HeaderValue::from_str(value) {
            v.set_sensitive(true);
            self.header = Some((name, v));
        }
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path` (with its query) and parses the body as JSON.
    pub async fn get(&self, path_and_query: &str) -> Result<serde_json::Value, SourceError> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut req = self.http.get(&url);
        if let Some((n, v)) = &self.header {
            req = req.header(*n, v.clone());
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        match status {
            200..=299 => serde_json::from_slice(&body)
                .map_err(|e| SourceError::Malformed(format!("{path_and_query}: {e}"))),
            429 | 418 => Err(SourceError::RateLimited { retry_after }),
            500..=599 => Err(SourceError::Server { status }),
            _ => Err(SourceError::Refused {
                status,
                detail: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            }),
        }
    }

    fn transport(&self, e: reqwest::Error) -> SourceError {
        if e.is_timeout() {
            SourceError::Timeout(self.timeout)
        } else {
            // Without the URL: it may carry a key in its query.
            SourceError::Transport(e.without_url().to_string())
        }
    }
}

/// `Retry-After` in seconds (the form every provider here sends).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let s: u64 = h.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(s))
}
