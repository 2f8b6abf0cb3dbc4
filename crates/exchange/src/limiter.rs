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
//! Orders come in three classes, and each may use only a share of every order window: orders
//! that open or add to a position (`opening_share_pct`, 40 % by default), other reducing orders
//! such as take-profits (`reducing_share_pct`, 60 %), and protective orders — a stop, a close
//! at market — which may use all of it. Since the protective share (40 %) is as large as
//! the opening one, the stops of every entry one window lets in fit in that window: a burst
//! of entries and take-profit resizes cannot leave a new position's stop waiting for the next.
//! [`RateLimiter::held_until`] tells a caller, without taking anything, whether an order of a
//! class would wait now (execution defers the intent instead of queueing behind it).

use std::sync::Mutex;
use std::time::Duration;

use qt_events::clock::SharedClock;

use crate::types::{AlgoOrderType, NewAlgoOrder, NewOrder, PlainOrderType};

/// Limits (per window) the limiter allows itself.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub weight_1m: u32,
    pub orders_10s: u32,
    pub orders_1m: u32,
    /// Share of each order window (percent) that opening orders may use.
    pub opening_share_pct: u32,
    /// Share of each order window (percent) that reducing orders other than protective ones
    /// (take-profits, trailing stops, reduce-only limits) may use.
    pub reducing_share_pct: u32,
    /// Wait after a ban without `Retry-After` (ms), doubled on each consecutive ban.
    pub ban_backoff_ms: u64,
}

impl Limits {
    /// How many orders of a window of `limit` an order of `class` may find already counted.
    fn share(&self, class: Orders, limit: u32) -> u32 {
        let pct = match class {
            Orders::None | Orders::Protective => return limit,
            Orders::Opening => self.opening_share_pct,
            Orders::Reducing => self.reducing_share_pct,
        };
        let share = u64::from(limit) * u64::from(pct.min(100)) / 100;
        u32::try_from(share).unwrap_or(limit)
    }
}

/// What a request places, for the order counts and their shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orders {
    /// No order (queries, cancels, account endpoints).
    None,
    /// An order that opens or adds to a position.
    Opening,
    /// A reduce-only order that is not protective: a take-profit, a trailing stop, a
    /// reduce-only limit.
    Reducing,
    /// An order that limits a loss now: a stop, a close-position order, a reduce-only market
    /// order (a close).
    Protective,
}

impl Orders {
    /// The class of a plain order.
    pub fn of_order(o: &NewOrder) -> Self {
        match (o.reduce_only, o.order_type) {
            (false, _) => Self::Opening,
            (true, PlainOrderType::Market) => Self::Protective,
            (true, PlainOrderType::Limit) => Self::Reducing,
        }
    }

    /// The class of a conditional order.
    pub fn of_algo(o: &NewAlgoOrder) -> Self {
        match (o.close_position, o.reduce_only, o.order_type) {
            (true, _, _) | (false, true, AlgoOrderType::StopMarket) => Self::Protective,
            (false, false, _) => Self::Opening,
            (false, true, _) => Self::Reducing,
        }
    }
}

#[derive(Debug, Default, Clone)]
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
    fn held_until_in(&self, st: &State, now: i64, weight: u32, orders: Orders) -> Option<i64> {
        if now < st.blocked_until_ms {
            return Some(st.blocked_until_ms);
        }
        if weight > 0 && st.weight_1m.saturating_add(weight) > self.limits.weight_1m {
            return Some((st.minute + 1) * 60_000);
        }
        if orders == Orders::None {
            return None;
        }
        if st.orders_1m.saturating_add(1) > self.limits.share(orders, self.limits.orders_1m) {
            return Some((st.minute + 1) * 60_000);
        }
        if st.orders_10s.saturating_add(1) > self.limits.share(orders, self.limits.orders_10s) {
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
        if let Some(until) = self.held_until_in(&st, now, weight, orders) {
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

    /// Until when an order of `class` would wait if it were sent now (ms since the epoch, by
    /// the injected clock), or `None` when it would go at once. Takes nothing.
    pub fn held_until(&self, class: Orders) -> Option<i64> {
        self.held_until_with(class, 0)
    }

    /// [`Self::held_until`] for a caller that may have up to `in_flight` other orders between
    /// this check and their send: the order counts as waiting unless `in_flight + 1` more fit
    /// in the class's share. Callers that check with their concurrency this way never wait in
    /// [`Self::acquire`] for an order share (a check that passed cannot be overtaken).
    pub fn held_until_with(&self, class: Orders, in_flight: u32) -> Option<i64> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        Self::roll(&mut st, now);
        if class == Orders::None || in_flight == 0 {
            return self.held_until_in(&st, now, 0, class);
        }
        let mut ahead = st.clone();
        ahead.orders_10s = ahead.orders_10s.saturating_add(in_flight);
        ahead.orders_1m = ahead.orders_1m.saturating_add(in_flight);
        self.held_until_in(&ahead, now, 0, class)
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
                opening_share_pct: 100,
                reducing_share_pct: 100,
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

    /// Ten orders per 10 s: entries may use six, reducing orders eight, protective ones all ten.
    fn ten_orders_per_window(clock: &ManualClock) -> RateLimiter {
        RateLimiter::new(
            Limits {
                weight_1m: 1_000,
                orders_10s: 10,
                orders_1m: 100,
                opening_share_pct: 60,
                reducing_share_pct: 80,
                ban_backoff_ms: 1_000,
            },
            Arc::new(clock.clone()),
        )
    }

    #[test]
    fn checks_that_count_the_other_senders_are_never_overtaken_by_them() {
        let clock = ManualClock::new(200_000);
        let l = ten_orders_per_window(&clock);
        // Four senders (three others in flight for each). With 2 of the 6 opening orders of the
        // window used, all four checks pass at once — and all four then fit.
        l.try_take(0, Orders::Opening);
        l.try_take(0, Orders::Opening);
        let passed = (0..4)
            .filter(|_| l.held_until_with(Orders::Opening, 3).is_none())
            .count();
        assert_eq!(passed, 4);
        for _ in 0..4 {
            assert_eq!(
                l.try_take(0, Orders::Opening),
                None,
                "a passed check never waits"
            );
        }
        // One more used would let a fourth sender in after three others: the check says wait,
        // though a lone sender would still fit.
        let l2 = ten_orders_per_window(&clock);
        for _ in 0..3 {
            l2.try_take(0, Orders::Opening);
        }
        assert_eq!(l2.held_until_with(Orders::Opening, 3), Some(210_000));
        assert_eq!(l2.held_until(Orders::Opening), None);
        // Protective orders are checked the same way but have the whole window.
        assert_eq!(l2.held_until_with(Orders::Protective, 3), None);
    }

    #[test]
    fn each_order_class_uses_only_its_share_of_the_window() {
        let clock = ManualClock::new(200_000);
        let l = ten_orders_per_window(&clock);
        for _ in 0..6 {
            assert_eq!(l.held_until(Orders::Opening), None);
            assert_eq!(l.try_take(0, Orders::Opening), None);
        }
        // 6 of 10 used: entries wait for the next window, take-profits get two more, and the
        // last two are for protective orders
        assert_eq!(l.held_until(Orders::Opening), Some(210_000));
        assert_eq!(l.try_take(0, Orders::Opening), Some(210_000));
        assert_eq!(l.try_take(0, Orders::Reducing), None);
        assert_eq!(l.try_take(0, Orders::Reducing), None);
        assert_eq!(l.held_until(Orders::Reducing), Some(210_000));
        assert_eq!(l.held_until(Orders::Protective), None);
        assert_eq!(l.try_take(0, Orders::Protective), None);
        assert_eq!(l.try_take(0, Orders::Protective), None);
        assert_eq!(l.try_take(0, Orders::Protective), Some(210_000));
        // the peeks took nothing, and the next window is open to every class
        assert_eq!(l.usage().orders_10s, 10);
        clock.set(210_000);
        assert_eq!(l.held_until(Orders::Opening), None);
        // the exchange's own count (other clients of the account) counts against the shares
        l.observe_headers(None, Some(8), None);
        assert_eq!(l.held_until(Orders::Opening), Some(220_000));
        assert_eq!(l.held_until(Orders::Reducing), Some(220_000));
        assert_eq!(l.try_take(0, Orders::Protective), None);
    }

    #[test]
    fn orders_are_classed_by_what_they_do_to_the_position() {
        use qt_events::{Decimal, Side};
        let entry = NewOrder::market("BTCUSDT", Side::Buy, Decimal::ONE, "e");
        assert_eq!(Orders::of_order(&entry), Orders::Opening);
        let close = entry.clone().reduce_only(true);
        assert_eq!(Orders::of_order(&close), Orders::Protective);
        let tp_limit = NewOrder::limit("BTCUSDT", Side::Sell, Decimal::ONE, Decimal::TEN, "t")
            .reduce_only(true);
        assert_eq!(Orders::of_order(&tp_limit), Orders::Reducing);
        let stop = NewAlgoOrder::stop_close_position("BTCUSDT", Side::Sell, Decimal::TEN, "s");
        assert_eq!(Orders::of_algo(&stop), Orders::Protective);
        let mut tp = stop.clone();
        tp.order_type = AlgoOrderType::TakeProfitMarket;
        tp.close_position = false;
        tp.reduce_only = true;
        assert_eq!(Orders::of_algo(&tp), Orders::Reducing);
        let mut stop_qty = tp.clone();
        stop_qty.order_type = AlgoOrderType::StopMarket;
        assert_eq!(Orders::of_algo(&stop_qty), Orders::Protective);
        let mut stop_entry = tp;
        stop_entry.reduce_only = false;
        assert_eq!(Orders::of_algo(&stop_entry), Orders::Opening);
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
