//! One error for everything execution does, by what the caller may do next: a recoverable one
//! passes (the intent stays pending and is handled again, a background pass retries at its next
//! tick), an unrecoverable one never will (the entry goes to the dead-letter stream). The
//! consumer handlers turn it into the bus's [`HandlerError`] at the edge.

use std::time::Duration;

use qt_bus::{BusError, HandlerError};
use qt_exchange::ExchangeError;
use qt_store::StoreError;

/// Why execution could not finish a piece of work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The database, Redis or the exchange failed in a way that passes (unreachable, busy, a
    /// refusal to retry, an order outcome still unknown): handled again, from the records.
    #[error("{0}")]
    Unavailable(String),
    /// Cannot be done now and retrying at once would not help (the order-rate budget is used
    /// up, an unknown outcome waits for its recvWindow fence): handled again after `retry_in`,
    /// the intents behind it going on meanwhile.
    #[error("later ({retry_in:?}): {reason}")]
    Later { reason: String, retry_in: Duration },
    /// Can never be done: a record that cannot be read back, a database this build cannot use.
    #[error("{0}")]
    Unrecoverable(String),
}

impl ExecError {
    /// Whether the same work may succeed later.
    #[must_use]
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, Self::Unrecoverable(_))
    }

    /// A recoverable failure described by `e`.
    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<StoreError> for ExecError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadValue { .. } | StoreError::UnsupportedUrl | StoreError::Migrate(_) => {
                Self::Unrecoverable(e.to_string())
            }
            StoreError::Connect(_) | StoreError::Query(_) => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for ExecError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// An exchange error that reaches here was classified by the caller where it matters (an
/// order's send); any other call is simply tried again.
impl From<ExchangeError> for ExecError {
    fn from(e: ExchangeError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<BusError> for ExecError {
    fn from(e: BusError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<ExecError> for HandlerError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Unavailable(m) => Self::Transient(m),
            ExecError::Later { reason, retry_in } => Self::Later { reason, retry_in },
            ExecError::Unrecoverable(m) => Self::Permanent(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_recoverable_unless_a_record_cannot_be_read() {
        let busy = ExecError::from(StoreError::Query(sqlx::Error::PoolTimedOut));
        assert!(busy.is_recoverable());
        assert!(matches!(
            HandlerError::from(busy),
            HandlerError::Transient(_)
        ));
        let corrupt = ExecError::from(StoreError::BadValue {
            column: "state".into(),
            value: "HALF".into(),
        });
        assert!(!corrupt.is_recoverable());
        assert!(matches!(
            HandlerError::from(corrupt),
            HandlerError::Permanent(_)
        ));
        let later = ExecError::Later {
            reason: "budget".into(),
            retry_in: Duration::from_millis(5),
        };
        assert!(later.is_recoverable());
        assert!(matches!(
            HandlerError::from(later),
            HandlerError::Later { retry_in, .. } if retry_in == Duration::from_millis(5)
        ));
    }
}
