//! [`SourceError`]: why a request to a provider gave nothing, and what the hub does about it.

use std::time::Duration;

/// A failed request to a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// 429 (or Binance's 418): nobody asks again before `retry_after` (the provider's
    /// `Retry-After`, or the hub's backoff when it sent none).
    #[error("rate limited by the provider (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: the provider is failing; retried after a backoff.
    #[error("provider error (http {status})")]
    Server { status: u16 },
    /// Any other non-2xx answer: the request itself is wrong (bad id, bad symbol).
    #[error("request refused (http {status}): {detail}")]
    Refused { status: u16, detail: String },
    /// A 2xx answer that is not the documented shape.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("transport: {0}")]
    Transport(String),
    /// This source does not serve that query.
    #[error("the source does not serve {0}")]
    Unsupported(String),
}

impl SourceError {
    /// Whether asking again later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            SourceError::Refused { .. } | SourceError::Unsupported(_)
        )
    }

    /// A short word for logs, metrics and health: `rate_limited`, `server`, …
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::RateLimited { .. } => "rate_limited",
            SourceError::Server { .. } => "server",
            SourceError::Refused { .. } => "refused",
            SourceError::Malformed(_) => "malformed",
            SourceError::Timeout(_) => "timeout",
            SourceError::Transport(_) => "transport",
            SourceError::Unsupported(_) => "unsupported",
        }
    }
}

impl From<qt_exchange::ExchangeError> for SourceError {
    fn from(e: qt_exchange::ExchangeError) -> Self {
        use qt_exchange::ExchangeError as E;
        match e {
            E::RateLimited { retry_after_ms, .. } => SourceError::RateLimited {
                retry_after: Some(Duration::from_millis(retry_after_ms)),
            },
            E::Api { status, .. } if status >= 500 => SourceError::Server { status },
            E::Api {
                status, code, msg, ..
            } => SourceError::Refused {
                status,
                detail: format!("{code} {msg}"),
            },
            E::Decode { reason, .. } => SourceError::Malformed(reason),
            E::Connect(r) => SourceError::Transport(r),
            E::Unknown { reason, .. } => SourceError::Transport(reason),
            E::Refused(r) => SourceError::Refused {
                status: 0,
                detail: r.to_string(),
            },
        }
    }
}
