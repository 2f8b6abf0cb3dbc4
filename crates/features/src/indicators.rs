//! O(1)-per-value indicator states. Each wraps `kand`'s incremental function (TA-Lib
//! definitions) and seeds itself exactly as `kand`'s batch function does, so the values match
//! `kand`'s batch output (tested in `tests/kand_golden.rs`). Where `kand` has no indicator
//! (VPT, rolling extremes, realized volatility) it is implemented here.

use std::collections::VecDeque;

use kand::ohlcv::{atr, cdl_doji, cdl_hammer, cdl_inverted_hammer, cdl_marubozu, ema, obv, rsi};

/// A fixed-capacity ring of the last `cap` values.
#[derive(Debug, Clone)]
pub struct Ring {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Ring {
            buf: vec![0.0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }
    pub fn cap(&self) -> usize {
        self.buf.len()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }
    /// Pushes a value; returns the value that fell out when the ring was full.
    pub fn push(&mut self, v: f64) -> Option<f64> {
        let cap = self.buf.len();
        let out = if self.len == cap {
            Some(self.buf[self.head])
        } else {
            self.len += 1;
            None
        };
        self.buf[self.head] = v;
        self.head = (self.head + 1) % cap;
        out
    }
    /// The value `k` steps back (0 = the newest).
    pub fn back(&self, k: usize) -> Option<f64> {
        if k >= self.len {
            return None;
        }
        let cap = self.buf.len();
        Some(self.buf[(self.head + cap - 1 - k) % cap])
    }
    /// Sum and sum of squares of the newest `n` values, computed exactly (used to reset drift).
    fn sums(&self, n: usize) -> (f64, f64) {
        (0..n.min(self.len))
            .rev()
            .filter_map(|k| self.back(k))
            .fold((0.0, 0.0), |(s, q), v| (s + v, v.mul_add(v, q)))
    }
}

/// Simple moving average (kand `sma_inc`, seeded by the plain mean of the first `period`).
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    ring: Ring,
    value: f64,
    seed_sum: f64,
}

impl Sma {
    pub fn new(period: usize) -> Self {
        Sma {
            period,
            ring: Ring::new(period),
            value: f64::NAN,
            seed_sum: 0.0,
        }
    }
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let old = self.ring.push(x);
        match old {
            None => {
                self.seed_sum += x;
                if self.ring.is_full() {
                    self.value = self.seed_sum / self.period as f64;
                    return Some(self.value);
                }
                None
            }
            Some(old) => {
                self.value =
                    kand::ohlcv::sma::sma_inc(self.value, x, old, self.period).unwrap_or(f64::NAN);
                Some(self.value)
            }
        }
    }
}

/// Exponential moving average, `k = 2 / (period + 1)`, seeded by the SMA of the first `period`
/// values (kand / TA-Lib).
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    count: usize,
    seed_sum: f64,
    value: f64,
}

impl Ema {
    pub fn new(period: usize) -> Self {
        Ema {
            period,
            count: 0,
            seed_sum: 0.0,
            value: f64::NAN,
        }
    }
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.count += 1;
        if self.count < self.period {
            self.seed_sum += x;
            return None;
        }
        if self.count == self.period {
            self.seed_sum += x;
            self.value = self.seed_sum / self.period as f64;
        } else {
            self.value = ema::ema_inc(x, self.value, self.period, None).unwrap_or(f64::NAN);
        }
        Some(self.value)
    }
}

/// Wilder's RSI (kand `rsi_inc`), first value after `period` price changes.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    count: usize,
    prev: f64,
    gains: f64,
    losses: f64,
    avg_gain: f64,
    avg_loss: f64,
}

impl Rsi {
    pub fn new(period: usize) -> Self {
        Rsi {
            period,
            count: 0,
            prev: f64::NAN,
            gains: 0.0,
            losses: 0.0,
            avg_gain: f64::NAN,
            avg_loss: f64::NAN,
        }
    }
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.count += 1;
        let prev = self.prev;
        self.prev = x;
        if self.count == 1 {
            return None;
        }
        if self.count <= self.period + 1 {
            let diff = x - prev;
            if diff > 0.0 {
                self.gains += diff;
            } else {
                self.losses += diff.abs();
            }
            if self.count < self.period + 1 {
                return None;
            }
            self.avg_gain = self.gains / self.period as f64;
            self.avg_loss = self.losses / self.period as f64;
            return Some(if self.avg_loss == 0.0 {
                100.0
            } else {
                100.0 - 100.0 / (1.0 + self.avg_gain / self.avg_loss)
            });
        }
        let (value, g, l) = rsi::rsi_inc(x, prev, self.avg_gain, self.avg_loss, self.period)
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        self.avg_gain = g;
        self.avg_loss = l;
        Some(value)
    }
}

/// Average true range with Wilder smoothing (kand `atr_inc`), seeded by the mean TR of
/// candles 1..=period.
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    count: usize,
    prev_close: f64,
    tr_sum: f64,
    value: f64,
}

impl Atr {
    pub fn new(period: usize) -> Self {
        Atr {
            period,
            count: 0,
            prev_close: f64::NAN,
            tr_sum: 0.0,
            value: f64::NAN,
        }
    }
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        self.count += 1;
        let prev_close = self.prev_close;
        self.prev_close = close;
        if self.count == 1 {
            return None;
        }
        if self.count <= self.period + 1 {
            self.tr_sum +=
                kand::ohlcv::trange::trange_inc(high, low, prev_close).unwrap_or(f64::NAN);
            if self.count < self.period + 1 {
                return None;
            }
            self.value = self.tr_sum / self.period as f64;
            return Some(self.value);
        }
        self.value =
            atr::atr_inc(high, low, prev_close, self.value, self.period).unwrap_or(f64::NAN);
        Some(self.value)
    }
}

/// MACD (kand): fast and slow EMAs of the price, signal = EMA of the MACD line from the first
/// candle where the slow EMA exists. Returns (line, signal, histogram).
#[derive(Debug, Clone)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        Macd {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
        }
    }
    pub fn update(&mut self, x: f64) -> Option<(f64, f64, f64)> {
        let fast = self.fast.update(x);
        let slow = self.slow.update(x)?;
        let line = fast? - slow;
        let signal = self.signal.update(line)?;
        Some((line, signal, line - signal))
    }
}

/// Bollinger bands (kand `sma_inc` + `var_inc`, population variance). The running sums are
/// recomputed from the window once per `period` values so float drift cannot build up over
/// months of live candles. Returns (upper, middle, lower).
#[derive(Debug, Clone)]
pub struct Bbands {
    period: usize,
    dev: f64,
    ring: Ring,
    sum: f64,
    sum_sq: f64,
    since_reset: usize,
}

impl Bbands {
    pub fn new(period: usize, dev: f64) -> Self {
        Bbands {
            period,
            dev,
            ring: Ring::new(period),
            sum: 0.0,
            sum_sq: 0.0,
            since_reset: 0,
        }
    }
    pub fn update(&mut self, x: f64) -> Option<(f64, f64, f64)> {
        let old = self.ring.push(x);
        self.since_reset += 1;
        if old.is_none() || self.since_reset >= self.period {
            (self.sum, self.sum_sq) = self.ring.sums(self.period);
            self.since_reset = 0;
        } else if let Some(old) = old {
            let (_, s, q) = kand::stats::var::var_inc(x, self.sum, self.sum_sq, old, self.period)
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
            self.sum = s;
            self.sum_sq = q;
        }
        if !self.ring.is_full() {
            return None;
        }
        let n = self.period as f64;
        let mean = self.sum / n;
        let var = (self.sum.mul_add(-mean, self.sum_sq) / n).max(0.0);
        let sd = var.sqrt();
        Some((
            self.dev.mul_add(sd, mean),
            mean,
            self.dev.mul_add(-sd, mean),
        ))
    }
}

/// On-balance volume (kand `obv_inc`), starting at the first candle's volume.
#[derive(Debug, Clone, Default)]
pub struct Obv {
    started: bool,
    prev_close: f64,
    value: f64,
}

impl Obv {
    pub fn update(&mut self, close: f64, volume: f64) -> f64 {
        if self.started {
            self.value =
                obv::obv_inc(close, self.prev_close, volume, self.value).unwrap_or(f64::NAN);
        } else {
            self.started = true;
            self.value = volume;
        }
        self.prev_close = close;
        self.value
    }
}

/// Volume-price trend (TA definition, not in kand):
/// `VPT_t = VPT_{t-1} + volume_t * (close_t - close_{t-1}) / close_{t-1}`, starting at 0.
#[derive(Debug, Clone, Default)]
pub struct Vpt {
    started: bool,
    prev_close: f64,
    value: f64,
}

impl Vpt {
    pub fn update(&mut self, close: f64, volume: f64) -> f64 {
        if self.started && self.prev_close != 0.0 {
            self.value += volume * (close - self.prev_close) / self.prev_close;
        }
        self.started = true;
        self.prev_close = close;
        self.value
    }
}

/// Rolling maximum (or minimum) of the last `period` values, amortized O(1) with a monotonic
/// deque.
#[derive(Debug, Clone)]
pub struct RollingExtreme {
    period: usize,
    max: bool,
    count: usize,
    deque: VecDeque<(usize, f64)>,
}

impl RollingExtreme {
    pub fn max(period: usize) -> Self {
        Self::new(period, true)
    }
    pub fn min(period: usize) -> Self {
        Self::new(period, false)
    }
    fn new(period: usize, max: bool) -> Self {
        RollingExtreme {
            period,
            max,
            count: 0,
            deque: VecDeque::with_capacity(period + 1),
        }
    }
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let i = self.count;
        self.count += 1;
        while let Some(&(_, v)) = self.deque.back() {
            let dominated = if self.max { v <= x } else { v >= x };
            if dominated {
                self.deque.pop_back();
            } else {
                break;
            }
        }
        self.deque.push_back((i, x));
        while let Some(&(j, _)) = self.deque.front() {
            if j + self.period <= i {
                self.deque.pop_front();
            } else {
                break;
            }
        }
        if self.count < self.period {
            return None;
        }
        self.deque.front().map(|&(_, v)| v)
    }
}

/// Rolling sum and sample standard deviation of the last `period` values; the sums are
/// recomputed from the window once per `period` values to stop float drift.
#[derive(Debug, Clone)]
pub struct RollingStats {
    period: usize,
    ring: Ring,
    sum: f64,
    sum_sq: f64,
    since_reset: usize,
}

impl RollingStats {
    pub fn new(period: usize) -> Self {
        RollingStats {
            period,
            ring: Ring::new(period),
            sum: 0.0,
            sum_sq: 0.0,
            since_reset: 0,
        }
    }
    /// Adds a value; returns (sum, sample std) once the window is full.
    pub fn update(&mut self, x: f64) -> Option<(f64, f64)> {
        let old = self.ring.push(x);
        self.since_reset += 1;
        match old {
            Some(old) if self.since_reset < self.period => {
                self.sum += x - old;
                self.sum_sq += x.mul_add(x, -old * old);
            }
            _ => {
                (self.sum, self.sum_sq) = self.ring.sums(self.period);
                self.since_reset = 0;
            }
        }
        if !self.ring.is_full() {
            return None;
        }
        let n = self.period as f64;
        let var = if self.period > 1 {
            ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        Some((self.sum, var.sqrt()))
    }
}

/// Candlestick patterns from kand: doji, hammer, inverted hammer (need a body average over
/// `period`), marubozu. Values: doji/hammer/inverted hammer 1 or 0; marubozu +1 bullish,
/// -1 bearish, 0 none.
#[derive(Debug, Clone)]
pub struct Patterns {
    period: usize,
    count: usize,
    seed_sum: f64,
    hammer_avg: f64,
    inv_hammer_avg: f64,
    marubozu_avg: f64,
}

/// Parameters as TA-Lib's defaults.
const BODY_PERIOD: usize = 14;
const DOJI_BODY_PERCENT: f64 = 5.0;
const DOJI_SHADOW_EQUAL_PERCENT: f64 = 100.0;
const HAMMER_FACTOR: f64 = 2.0;
const MARUBOZU_SHADOW_PERCENT: f64 = 5.0;

/// Output of [`Patterns::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatternValues {
    pub doji: f64,
    pub hammer: f64,
    pub inverted_hammer: f64,
    pub marubozu: f64,
}

impl Default for Patterns {
    fn default() -> Self {
        Self::new(BODY_PERIOD)
    }
}

fn sign(signal: i64) -> f64 {
    match signal {
        s if s > 1 => 1.0,
        s if s < -1 => -1.0,
        1 => 1.0,
        _ => 0.0,
    }
}

impl Patterns {
    pub fn new(period: usize) -> Self {
        Patterns {
            period,
            count: 0,
            seed_sum: 0.0,
            hammer_avg: f64::NAN,
            inv_hammer_avg: f64::NAN,
            marubozu_avg: f64::NAN,
        }
    }
    /// Values from the candle after the first `period` on. As in kand's batch functions the
    /// body average starts as the mean of the first `period` bodies; hammer and inverted hammer
    /// already smooth it with candle `period - 1`, marubozu from candle `period` on.
    pub fn update(&mut self, open: f64, high: f64, low: f64, close: f64) -> Option<PatternValues> {
        self.count += 1;
        let seeding = self.count == self.period;
        if self.count <= self.period {
            self.seed_sum += (close - open).abs();
            if !seeding {
                return None;
            }
            let seed = self.seed_sum / self.period as f64;
            self.hammer_avg = seed;
            self.inv_hammer_avg = seed;
            self.marubozu_avg = seed;
        }
        let (hammer, a) = cdl_hammer::cdl_hammer_inc(
            open,
            high,
            low,
            close,
            self.hammer_avg,
            self.period,
            HAMMER_FACTOR,
        )
        .unwrap_or((0, f64::NAN));
        self.hammer_avg = a;
        let (inv, a) = cdl_inverted_hammer::cdl_inverted_hammer_inc(
            open,
            high,
            low,
            close,
            self.inv_hammer_avg,
            self.period,
            HAMMER_FACTOR,
        )
        .unwrap_or((0, f64::NAN));
        self.inv_hammer_avg = a;
        if seeding {
            return None;
        }
        let (maru, a) = cdl_marubozu::cdl_marubozu_inc(
            open,
            high,
            low,
            close,
            self.marubozu_avg,
            self.period,
            MARUBOZU_SHADOW_PERCENT,
        )
        .unwrap_or((0, f64::NAN));
        self.marubozu_avg = a;
        let doji = cdl_doji::cdl_doji_inc(
            open,
            high,
            low,
            close,
            DOJI_BODY_PERCENT,
            DOJI_SHADOW_EQUAL_PERCENT,
        )
        .unwrap_or(0);
        Some(PatternValues {
            doji: sign(doji),
            hammer: sign(hammer),
            inverted_hammer: sign(inv),
            marubozu: sign(maru),
        })
    }
}
