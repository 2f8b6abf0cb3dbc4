//! [`Pacer`]: a sliding-window request budget on the injected clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::source::Limit;

/// At most `limit.requests` request starts in any window of `limit.per`.
#[derive(Debug)]
pub struct Pacer {
    limit: Limit,
    sent: Mutex<VecDeque<i64>>,
}

impl Pacer {
    pub fn new(limit: Limit) -> Self {
        Self {
            limit,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes one request slot at `now_ms`, or says how long until one frees up.
    pub fn try_take(&self, now_ms: i64) -> Result<(), Duration> {
        let per = i64::try_from(self.limit.per.as_millis()).unwrap_or(i64::MAX);
        let mut q = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        while q.front().is_some_and(|t| now_ms - *t >= per) {
            q.pop_front();
        }
        if q.len() < self.limit.requests as usize {
            q.push_back(now_ms);
            return Ok(());
        }
        let oldest = q.front().copied().unwrap_or(now_ms);
        let wait = (oldest + per - now_ms).max(1);
        Err(Duration::from_millis(u64::try_from(wait).unwrap_or(1)))
    }

    /// Requests started in the current window.
    pub fn used(&self, now_ms: i64) -> usize {
        let per = i64::try_from(self.limit.per.as_millis()).unwrap_or(i64::MAX);
        let q = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().filter(|t| now_ms - **t < per).count()
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_budget_then_says_when_the_next_slot_frees() {
        let p = Pacer::new(Limit {
            requests: 3,
            per: Duration::from_secs(60),
        });
        for t in [0, 10, 20] {
            assert!(p.try_take(t * 1000).is_ok());
        }
        assert_eq!(p.try_take(30_000), Err(Duration::from_secs(30)));
        assert!(p.try_take(60_000).is_ok());
        assert_eq!(p.used(60_000), 3);
    }
}
