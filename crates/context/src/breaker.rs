//! [`Breaker`]: a circuit breaker per source.
//!
//! Closed: requests go. After `failures` consecutive failures it opens: nothing goes for
//! `open_for`. Then it is half-open: exactly one trial request goes; success closes it, failure
//! opens it again for another `open_for`.

use std::sync::Mutex;
use std::time::Duration;

/// The breaker's state, as health reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until_ms: i64 },
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    consecutive: u32,
    open_until: Option<i64>,
    trial_out: bool,
}

#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    open_for_ms: i64,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Self {
            failures: failures.max(1),
            open_for_ms: i64::try_from(open_for.as_millis()).unwrap_or(i64::MAX),
            inner: Mutex::new(Inner {
                consecutive: 0,
                open_until: None,
                trial_out: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request may go now (in half-open, only the first caller gets `true`).
    pub fn allow(&self, now_ms: i64) -> bool {
        let mut i = self.lock();
        match i.open_until {
            None => true,
            Some(until) if now_ms < until => false,
            Some(_) if i.trial_out => false,
            Some(_) => {
                i.trial_out = true;
                true
            }
        }
    }

    pub fn success(&self) {
        let mut i = self.lock();
        i.consecutive = 0;
        i.open_until = None;
        i.trial_out = false;
    }

    pub fn failure(&self, now_ms: i64) {
        let mut i = self.lock();
        i.consecutive = i.consecutive.saturating_add(1);
        if i.trial_out || i.consecutive >= self.failures {
            i.open_until = Some(now_ms.saturating_add(self.open_for_ms));
            i.trial_out = false;
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.lock().consecutive
    }

    pub fn state(&self, now_ms: i64) -> BreakerState {
        let i = self.lock();
        match i.open_until {
            None => BreakerState::Closed,
            Some(until) if now_ms < until => BreakerState::Open { until_ms: until },
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_lets_one_trial_through() {
        let b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(b.allow(0));
            b.failure(0);
        }
        assert!(b.allow(0));
        b.failure(0);
        assert_eq!(b.state(1), BreakerState::Open { until_ms: 10_000 });
        assert!(!b.allow(9_999));
        assert!(b.allow(10_000), "the trial");
        assert!(!b.allow(10_001), "only one trial at a time");
        b.failure(10_002);
        assert!(!b.allow(10_003), "a failed trial opens it again");
        assert!(b.allow(20_002));
        b.success();
        assert_eq!(b.state(20_003), BreakerState::Closed);
        assert!(b.allow(20_003) && b.allow(20_003));
    }
}
