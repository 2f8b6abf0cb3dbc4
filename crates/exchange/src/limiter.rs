//! A weighted request limiter that follows the exchange's own counters.
//!
//! Binance counts request weight per IP per minute and orders per account per 10 s and per
//! minute, and reports its counts in `X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S` and
//! `X-MBX-ORDER-COUNT-1M`. The limiter keeps its own count per window, raises it to whatever
//! the headers say (other processes on the same IP count too), and makes a request wait for the
//! next window when it would go over. After a 429 or 418 it holds back *every* request until
//! `Retry-After` (or a doubling backoff when the header is absent) has passed: it never hammers.
//! Time comes from the injected clock.
//!
//! Orders come in two classes. A share of each order window (`reducing_reserve_pct`) is kept
//! for orders that only reduce or protect a position (reduce-only, close-position: stops,
//! take-profits, closes): an order that opens or adds to a position waits once the rest is
//! used up, so a burst of entries can never leave a new position's stop waiting for the next
//! window. [`RateLimiter::opening_held_until`] tells a caller, without taking anything, whether
//! an opening order would wait now (execution defers the entry instead of queueing behind it).

use std::sync::Mutex;
use std::time::Duration;

use qt_events::clock::SharedClock;

/// Limits (per window) the limiter allows itself.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub weight_1m: u32,
    pub orders_10s: u32,
    pub orders_1m: u32,
    /// Share of each order window (percent) that only reducing orders may use.
    pub reducing_reserve_pct: u32,
    /// Wait after a ban without `Retry-After` (ms), doubled on each consecutive ban.
    pub ban_backoff_ms: u64,
}

impl Limits {
    /// What opening orders may use of a window of `limit` orders: all but the reserve.
    fn opening_share(&self, limit: u32) -> u32 {
        let reserve = u64::from(limit) * u64::from(self.reducing_reserve_pct.min(100)) / 100;
        limit.saturating_sub(u32::try_from(reserve).unwrap_or(limit))
    }
}

/// What a request places, for the order counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orders {
    /// No order (queries, cancels, account endpoints).
    None,
    /// An order that opens or adds to a position: it may not use the reducing reserve.
    Opening,
    /// A reduce-only or close-position order: it may use the whole window.
    Reducing,
}

impl Orders {
    /// The class of an order by its flags.
    pub fn of(reduce_only: bool, close_position: bool) -> Self {
        if reduce_only || close_position {
            Self::Reducing
        } else {
            Self::Opening
        }
    }
}

#[derive(Debug, Default)]
struct State {
    minute: i64,
    ten_s: i64,
    weight_1m: u32,
    orders_10s: u32,
    orders_1m: u32,
    blocked_until_ms: i64,
    consecutive_bans: u32,
}

/// The used counts the limiter currently believes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub weight_1m: u32,
    pub orders_10s: u32,
    pub orders_1m: u32,
    /// Every request waits until this time (ms since the epoch, by the injected clock).
    pub blocked_until_ms: i64,
}

/// See the module docs.
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    clock: SharedClock,
    state: Mutex<State>,
}

/// Longest single sleep, so a clock moved by a test (or a resync) is noticed promptly.
const MAX_NAP_MS: i64 = 50;

/// Sleeps until `clock` reads at least `target_ms`, in naps of at most 50 ms.
pub(crate) async fn sleep_until_clock(clock: &SharedClock, target_ms: i64) {
    loop {
        let now = clock.now_ms();
        if now >= target_ms {
            return;
        }
        let nap = (target_ms - now).min(MAX_NAP_MS);
        tokio::time::sleep(Duration::from_millis(u64::try_from(nap).unwrap_or(1))).await;
    }
}

impl RateLimiter {
    pub fn new(limits: Limits, clock: SharedClock) -> Self {
        Self {
            limits,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn roll(st: &mut State, now: i64) {
        let minute = now.div_euclid(60_000);
        if minute != st.minute {
            st.minute = minute;
            st.weight_1m = 0;
            st.orders_1m = 0;
        }
        let ten = now.div_euclid(10_000);
        if ten != st.ten_s {
            st.ten_s = ten;
            st.orders_10s = 0;
        }
    }

    /// When a request of `weight` placing `orders` may go (ms), or `None` if it may go now.
    fn held_until(&self, st: &State, now: i64, weight: u32, orders: Orders) -> Option<i64> {
        if now < st.blocked_until_ms {
            return Some(st.blocked_until_ms);
        }
        if weight > 0 && st.weight_1m.saturating_add(weight) > self.limits.weight_1m {
            return Some((st.minute + 1) * 60_000);
        }
        let (limit_1m, limit_10s) = match orders {
            Orders::None => return None,
            Orders::Reducing => (self.limits.orders_1m, self.limits.orders_10s),
            Orders::Opening => (
                self.limits.opening_share(self.limits.orders_1m),
                self.limits.opening_share(self.limits.orders_10s),
            ),
        };
        if st.orders_1m.saturating_add(1) > limit_1m {
            return Some((st.minute + 1) * 60_000);
        }
        if st.orders_10s.saturating_add(1) > limit_10s {
            return Some((st.ten_s + 1) * 10_000);
        }
        None
    }

    /// When a request of `weight` placing `orders` may go, or `None` if it may go now (in
    /// which case it has been counted).
    fn try_take(&self, weight: u32, orders: Orders) -> Option<i64> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        Self::roll(&mut st, now);
        if let Some(until) = self.held_until(&st, now, weight, orders) {
            return Some(until);
        }
        let n = u32::from(orders != Orders::None);
        st.weight_1m = st.weight_1m.saturating_add(weight);
        st.orders_10s = st.orders_10s.saturating_add(n);
        st.orders_1m = st.orders_1m.saturating_add(n);
        None
    }

    /// Waits until a request of `weight` IP weight placing `orders` may be sent, and counts it.
    pub async fn acquire(&self, weight: u32, orders: Orders) {
        while let Some(until) = self.try_take(weight, orders) {
            sleep_until_clock(&self.clock, until).await;
        }
    }

    /// Until when an opening order would wait if it were sent now (ms since the epoch, by the
    /// injected clock), or `None` when it would go at once. Takes nothing.
    pub fn opening_held_until(&self) -> Option<i64> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        Self::roll(&mut st, now);
        self.held_until(&st, now, 0, Orders::Opening)
    }

    /// Raises the counts to what the exchange reported in its headers.
    pub fn observe_headers(
        &self,
        used_weight_1m: Option<u32>,
        orders_10s: Option<u32>,
        orders_1m: Option<u32>,
    ) {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        Self::roll(&mut st, now);
        if let Some(w) = used_weight_1m {
            st.weight_1m = st.weight_1m.max(w);
        }
        if let Some(o) = orders_10s {
            st.orders_10s = st.orders_10s.max(o);
        }
        if let Some(o) = orders_1m {
            st.orders_1m = st.orders_1m.max(o);
        }
    }

    /// Records a 429/418: every request waits `retry_after_ms`, or a doubling backoff when the
    /// answer carried no `Retry-After`. Returns the wait applied.
    pub fn ban(&self, retry_after_ms: Option<u64>) -> u64 {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let wait = retry_after_ms.unwrap_or_else(|| {
            let shift = st.consecutive_bans.min(10);
            self.limits.ban_backoff_ms.saturating_mul(1u64 << shift)
        });
        st.consecutive_bans = st.consecutive_bans.saturating_add(1);
        let until = now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
        st.blocked_until_ms = st.blocked_until_ms.max(until);
        wait
    }

    /// Records a successful answer (resets the ban backoff).
    pub fn success(&self) {
        self.lock().consecutive_bans = 0;
    }

    /// Current counts.
    pub fn usage(&self) -> Usage {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        Self::roll(&mut st, now);
        Usage {
            weight_1m: st.weight_1m,
            orders_10s: st.orders_10s,
            orders_1m: st.orders_1m,
            blocked_until_ms: st.blocked_until_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_events::clock::ManualClock;
    use std::sync::Arc;

    fn limiter(clock: &ManualClock) -> RateLimiter {
        RateLimiter::new(
            Limits {
                weight_1m: 100,
                orders_10s: 3,
                orders_1m: 10,
                reducing_reserve_pct: 0,
                ban_backoff_ms: 1_000,
            },
            Arc::new(clock.clone()),
        )
    }

    #[test]
    fn header_counts_raise_the_used_weight_and_hold_requests_to_the_next_minute() {
        let clock = ManualClock::new(120_000);
        let l = limiter(&clock);
        assert_eq!(l.try_take(10, Orders::None), None);
        l.observe_headers(Some(95), None, None);
        assert_eq!(l.usage().weight_1m, 95);
        // 95 + 10 > 100: wait for the next minute
        assert_eq!(l.try_take(10, Orders::None), Some(180_000));
        assert_eq!(l.try_take(5, Orders::None), None);
        clock.set(180_000);
        assert_eq!(l.usage().weight_1m, 0);
        assert_eq!(l.try_take(10, Orders::None), None);
    }

    #[test]
    fn order_count_headers_hold_orders_to_the_next_ten_seconds() {
        let clock = ManualClock::new(125_000);
        let l = limiter(&clock);
        l.observe_headers(None, Some(3), Some(3));
        assert_eq!(l.try_take(0, Orders::Opening), Some(130_000));
        // a request that places no order is not held by order counts
        assert_eq!(l.try_take(1, Orders::None), None);
        clock.set(130_000);
        assert_eq!(l.try_take(0, Orders::Opening), None);
    }

    #[test]
    fn opening_orders_leave_the_reserve_to_reducing_orders() {
        let clock = ManualClock::new(200_000);
        let l = RateLimiter::new(
            Limits {
                weight_1m: 1_000,
                orders_10s: 10,
                orders_1m: 100,
                reducing_reserve_pct: 20,
                ban_backoff_ms: 1_000,
            },
            Arc::new(clock.clone()),
        );
        for _ in 0..8 {
            assert_eq!(l.opening_held_until(), None);
            assert_eq!(l.try_take(0, Orders::Opening), None);
        }
        // 8 of 10 used: the last 2 are for reducing orders only
        assert_eq!(l.opening_held_until(), Some(210_000));
        assert_eq!(l.try_take(0, Orders::Opening), Some(210_000));
        assert_eq!(l.try_take(0, Orders::Reducing), None);
        assert_eq!(l.try_take(0, Orders::Reducing), None);
        assert_eq!(l.try_take(0, Orders::Reducing), Some(210_000));
        // the peek took nothing, and the next window is open to both
        assert_eq!(l.usage().orders_10s, 10);
        clock.set(210_000);
        assert_eq!(l.opening_held_until(), None);
        // the exchange's own count (other clients of the account) counts against the share
        l.observe_headers(None, Some(8), None);
        assert_eq!(l.opening_held_until(), Some(220_000));
        assert_eq!(l.try_take(0, Orders::Reducing), None);
    }

    #[test]
    fn a_ban_blocks_every_request_for_retry_after_or_a_doubling_backoff() {
        let clock = ManualClock::new(1_000_000);
        let l = limiter(&clock);
        assert_eq!(l.ban(Some(2_000)), 2_000);
        assert_eq!(l.try_take(1, Orders::None), Some(1_002_000));
        assert_eq!(l.try_take(0, Orders::Opening), Some(1_002_000));
        clock.set(1_002_000);
        assert_eq!(l.try_take(1, Orders::None), None);
        // without Retry-After: 1 s, then 2 s (consecutive), reset by a success
        assert_eq!(l.ban(None), 2_000);
        l.success();
        assert_eq!(l.ban(None), 1_000);
    }

    #[tokio::test]
    async fn acquire_waits_until_the_clock_passes_the_ban() {
        let clock = ManualClock::new(1_000_000);
        let l = Arc::new(limiter(&clock));
        l.ban(Some(60_000));
        let l2 = l.clone();
        let task = tokio::spawn(async move { l2.acquire(1, Orders::None).await });
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!task.is_finished(), "acquire must wait out the ban");
        clock.advance(60_000);
        let resumed = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(
            matches!(resumed, Ok(Ok(()))),
            "acquire did not resume after the ban"
        );
    }
}
