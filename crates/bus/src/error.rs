/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Connection refused or dropped, timeout, Redis loading or restarting, or a server that
    /// was demoted to a replica by a failover (`READONLY`), or a cluster without a master for
    /// a slot (`CLUSTERDOWN`, `TRYAGAIN`): try again later.
    #[error("redis unavailable: {0}")]
    Unavailable(#[source] redis::RedisError),
    /// Redis refused the command for a reason a retry will not fix.
    #[error("redis refused the command: {0}")]
    Refused(#[source] redis::RedisError),
    /// The reply did not have the expected shape.
    #[error("unexpected redis reply: {0}")]
    Protocol(String),
    /// The configuration is unusable (for example a malformed URL).
    #[error("bad redis configuration: {0}")]
    Config(String),
}

impl BusError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BusError::Unavailable(_))
    }
}

impl From<redis::RedisError> for BusError {
    fn from(e: redis::RedisError) -> Self {
        let transient = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || matches!(
                e.code(),
                Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" | "CLUSTERDOWN")
            )
            || e.kind() == redis::ErrorKind::Io;
        if transient {
            BusError::Unavailable(e)
        } else {
            BusError::Refused(e)
        }
    }
}

/// Exponential backoff with jitter: 50 ms doubling to `max`.
pub(crate) fn backoff(attempt: u32, max: std::time::Duration) -> std::time::Duration {
    use rand::Rng;
    let base = 50u64.saturating_mul(1u64 << attempt.min(16));
    let capped = base.min(u64::try_from(max.as_millis()).unwrap_or(u64::MAX));
    let jitter = rand::rng().random_range(0..=capped / 4 + 1);
    std::time::Duration::from_millis(capped.saturating_sub(capped / 8) + jitter)
}
