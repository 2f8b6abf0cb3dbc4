//! The market: per-symbol candle series (replayed files or a seeded random walk), the replay
//! cursor, mark prices and the symbol filters served in `exchangeInfo`.

use std::collections::BTreeMap;

use qt_candles::Candle;
use qt_events::Decimal;
use qt_matching::Bar;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{MarketSource, SimConfig};
use crate::error::ApiError;

/// Exchange filters of one symbol.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SymbolSpec {
    pub symbol: String,
    pub base_asset: String,
    pub tick_size: Decimal,
    pub step_size: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_notional: Decimal,
    pub max_leverage: u32,
}

impl SymbolSpec {
    /// Filters like Binance's for the symbols it knows, derived from the price otherwise.
    pub fn for_symbol(symbol: &str, price: Decimal) -> Self {
        let d = |m: i64, s: u32| Decimal::new(m, s);
        let (tick, step, min_notional, max_lev) = match symbol {
            "BTCUSDT" => (d(1, 1), d(1, 3), d(100, 0), 125),
            "ETHUSDT" => (d(1, 2), d(1, 3), d(20, 0), 125),
            "BNBUSDT" => (d(1, 2), d(1, 2), d(5, 0), 75),
            "SOLUSDT" => (d(1, 2), d(1, 0), d(5, 0), 75),
            "XRPUSDT" => (d(1, 4), d(1, 1), d(5, 0), 75),
            "ADAUSDT" => (d(1, 5), d(1, 0), d(5, 0), 75),
            _ => {
                let tick = if price >= d(10_000, 0) {
                    d(1, 1)
                } else if price >= d(100, 0) {
                    d(1, 2)
                } else if price >= d(1, 0) {
                    d(1, 3)
                } else {
                    d(1, 5)
                };
                let step = if price >= d(1_000, 0) {
                    d(1, 3)
                } else if price >= d(10, 0) {
                    d(1, 2)
                } else {
                    d(1, 0)
                };
                (tick, step, d(5, 0), 50)
            }
        };
        let base = symbol.strip_suffix("USDT").unwrap_or(symbol).to_string();
        Self {
            symbol: symbol.to_string(),
            base_asset: base,
            tick_size: tick,
            step_size: step,
            min_qty: step,
            max_qty: d(1_000_000, 0),
            min_notional,
            max_leverage: max_lev,
        }
    }

    pub fn price_precision(&self) -> u32 {
        self.tick_size.normalize().scale()
    }

    pub fn quantity_precision(&self) -> u32 {
        self.step_size.normalize().scale()
    }
}

/// The served symbols and their filters: fixed at start, so requests are checked against them
/// without the exchange's lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instruments(BTreeMap<String, SymbolSpec>);

impl Instruments {
    /// The filters of `symbol`.
    ///
    /// # Errors
    /// `-1121` for a symbol that is not served.
    pub fn get(&self, symbol: &str) -> Result<&SymbolSpec, ApiError> {
        self.0.get(symbol).ok_or_else(ApiError::invalid_symbol)
    }

    /// Every served symbol, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &SymbolSpec> {
        self.0.values()
    }
}

/// The last day of closed candles of a symbol (the 24h ticker's figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayStats {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub last: Decimal,
    pub change: Decimal,
    /// Percent, 3 decimals.
    pub change_percent: Decimal,
    /// Volume-weighted close, 8 decimals (the last close without volume).
    pub weighted_avg: Decimal,
    pub volume: Decimal,
    /// 8 decimals.
    pub quote_volume: Decimal,
    pub open_time: i64,
}

/// One symbol's series and replay position.
#[derive(Debug, Clone)]
pub struct SymbolMarket {
    pub spec: SymbolSpec,
    pub interval_ms: i64,
    pub candles: Vec<Candle>,
    /// Candles `[0, cursor)` are closed; the last of them is "now".
    pub cursor: usize,
    /// A mark price set by a test; `None` means the last close.
    pub mark_override: Option<Decimal>,
    synthetic: bool,
    rng: rand::rngs::StdRng,
}

impl SymbolMarket {
    /// The last closed candle.
    pub fn current(&self) -> Option<&Candle> {
        self.cursor.checked_sub(1).and_then(|i| self.candles.get(i))
    }

    /// The figures of the last day of closed candles; `None` before the first close.
    pub fn day_stats(&self) -> Option<DayStats> {
        let closed = self.closed();
        let per_day = usize::try_from(86_400_000 / self.interval_ms.max(1))
            .unwrap_or(1)
            .max(1);
        let window = &closed[closed.len().saturating_sub(per_day)..];
        let first = window.first()?;
        let last = window.last()?;
        let volume: Decimal = window.iter().map(|c| c.volume).sum();
        let quote: Decimal = window.iter().map(|c| c.volume * c.close).sum();
        let change = last.close - first.open;
        Some(DayStats {
            open: first.open,
            high: window.iter().map(|c| c.high).max().unwrap_or_default(),
            low: window.iter().map(|c| c.low).min().unwrap_or_default(),
            last: last.close,
            change,
            change_percent: if first.open.is_zero() {
                Decimal::ZERO
            } else {
                (change / first.open * Decimal::ONE_HUNDRED).round_dp(3)
            },
            weighted_avg: if volume.is_zero() {
                last.close
            } else {
                (quote / volume).round_dp(8)
            },
            volume,
            quote_volume: quote.round_dp(8),
            open_time: first.open_time,
        })
    }

    /// The last closed candle as the matching model's bar.
    pub fn current_bar(&self) -> Option<Bar> {
        self.current().map(Bar::from)
    }

    pub fn last_price(&self) -> Decimal {
        self.current().map_or(Decimal::ZERO, |c| c.close)
    }

    pub fn mark_price(&self) -> Decimal {
        self.mark_override.unwrap_or_else(|| self.last_price())
    }

    /// The market's "now": the close time of the last closed candle + 1 ms.
    pub fn now_ms(&self) -> i64 {
        self.current().map_or(0, |c| c.open_time + self.interval_ms)
    }

    /// Closed candles.
    pub fn closed(&self) -> &[Candle] {
        &self.candles[..self.cursor.min(self.candles.len())]
    }

    /// Advance one candle; returns it, or `None` when a replayed file is exhausted.
    pub fn advance(&mut self) -> Option<Candle> {
        if self.cursor >= self.candles.len() {
            if !self.synthetic {
                return None;
            }
            self.extend_synthetic(1_000);
        }
        self.cursor += 1;
        self.mark_override = None;
        self.current().copied()
    }

    fn extend_synthetic(&mut self, n: usize) {
        let tick = self.spec.tick_size;
        for _ in 0..n {
            let (t, prev) = self.candles.last().map_or((0, Decimal::new(100, 0)), |c| {
                (c.open_time + self.interval_ms, c.close)
            });
            let candle = walk_step(&mut self.rng, t, prev, tick);
            self.candles.push(candle);
        }
    }
}

fn walk_step(rng: &mut rand::rngs::StdRng, open_time: i64, prev: Decimal, tick: Decimal) -> Candle {
    // Moves in basis points of the previous close, rounded to the tick.
    let bp =
        |rng: &mut rand::rngs::StdRng, lo: i64, hi: i64| Decimal::new(rng.random_range(lo..=hi), 4);
    let round = |p: Decimal| ((p / tick).round() * tick).max(tick);
    let open = prev;
    let close = round(open * (Decimal::ONE + bp(rng, -40, 40)));
    let high = round(open.max(close) * (Decimal::ONE + bp(rng, 0, 20)));
    let low = round(open.min(close) * (Decimal::ONE - bp(rng, 0, 20)));
    let volume = Decimal::new(rng.random_range(50..5_000), 1);
    Candle::new(
        open_time,
        open,
        high.max(open).max(close),
        low.min(open).min(close),
        close,
        volume,
    )
}

/// Errors building the market; not retryable (fix the files or the symbols).
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("reading candles: {0}")]
    Candles(#[from] qt_candles::CandleError),
    #[error("no candles for symbol {0}")]
    NoData(String),
    #[error("no usable kline files in {0}")]
    NoFiles(String),
}

/// All symbols.
#[derive(Debug, Clone)]
pub struct Market {
    pub symbols: BTreeMap<String, SymbolMarket>,
}

fn seed_for(seed: u64, symbol: &str) -> u64 {
    symbol.bytes().fold(seed ^ 0x9E37_79B9_7F4A_7C15, |h, b| {
        h.rotate_left(7) ^ u64::from(b).wrapping_mul(0x100_0000_01B3)
    })
}

fn start_price(symbol: &str) -> Decimal {
    match symbol {
        "BTCUSDT" => Decimal::new(30_000, 0),
        "ETHUSDT" => Decimal::new(2_000, 0),
        "BNBUSDT" => Decimal::new(300, 0),
        "SOLUSDT" => Decimal::new(25, 0),
        "XRPUSDT" => Decimal::new(5, 1),
        "ADAUSDT" => Decimal::new(3, 1),
        _ => Decimal::new(100, 0),
    }
}

impl Market {
    /// Build the market from the configuration: load files (via `qt-candles`) or start a walk.
    pub fn build(cfg: &SimConfig) -> Result<Self, MarketError> {
        let mut symbols = BTreeMap::new();
        match &cfg.source {
            MarketSource::Synthetic => {
                let names = if cfg.symbols.is_empty() {
                    vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()]
                } else {
                    cfg.symbols.clone()
                };
                for s in names {
                    let price = start_price(&s);
                    let mut m = SymbolMarket {
                        spec: SymbolSpec::for_symbol(&s, price),
                        interval_ms: cfg.synthetic_interval_ms,
                        candles: Vec::new(),
                        cursor: 0,
                        mark_override: None,
                        synthetic: true,
                        rng: rand::rngs::StdRng::seed_from_u64(seed_for(cfg.seed, &s)),
                    };
                    // Start at a fixed epoch so a restart regenerates the same series.
                    m.candles.push(Candle::new(
                        1_700_000_000_000 - 1_700_000_000_000 % cfg.synthetic_interval_ms,
                        price,
                        price,
                        price,
                        price,
                        Decimal::new(1_000, 0),
                    ));
                    m.extend_synthetic(cfg.warmup_candles.max(1) + 1_000);
                    m.cursor = cfg.warmup_candles.max(1);
                    symbols.insert(s, m);
                }
            }
            MarketSource::Files(path) => {
                let files = if path.is_dir() {
                    qt_candles::list_kline_files(path)?
                } else {
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_string();
                    let (symbol, interval) = qt_candles::parse_kline_file_name(&name)?;
                    let interval_ms = qt_candles::parse_interval(&interval)?;
                    vec![qt_candles::KlineFile {
                        symbol,
                        interval,
                        interval_ms,
                        path: path.clone(),
                    }]
                };
                for f in files {
                    if !cfg.symbols.is_empty() && !cfg.symbols.contains(&f.symbol) {
                        continue;
                    }
                    if symbols.contains_key(&f.symbol) {
                        continue; // first (smallest) interval wins
                    }
                    let candles = qt_candles::read_klines(&f.path)?;
                    let Some(first) = candles.first() else {
                        return Err(MarketError::NoData(f.symbol));
                    };
                    let spec = SymbolSpec::for_symbol(&f.symbol, first.close);
                    let cursor = cfg.warmup_candles.clamp(1, candles.len());
                    symbols.insert(
                        f.symbol.clone(),
                        SymbolMarket {
                            spec,
                            interval_ms: f.interval_ms,
                            candles,
                            cursor,
                            mark_override: None,
                            synthetic: false,
                            rng: rand::rngs::StdRng::seed_from_u64(0),
                        },
                    );
                }
                for s in &cfg.symbols {
                    if !symbols.contains_key(s) {
                        return Err(MarketError::NoData(s.clone()));
                    }
                }
                if symbols.is_empty() {
                    return Err(MarketError::NoFiles(path.display().to_string()));
                }
            }
        }
        Ok(Self { symbols })
    }

    /// The served symbols and their filters.
    pub fn instruments(&self) -> Instruments {
        Instruments(
            self.symbols
                .iter()
                .map(|(s, m)| (s.clone(), m.spec.clone()))
                .collect(),
        )
    }

    pub fn get(&self, symbol: &str) -> Option<&SymbolMarket> {
        self.symbols.get(symbol)
    }

    /// Closed candles of `symbol` at `interval_ms` (a multiple of the series' interval),
    /// aggregated when needed, with open time in `[start, end]`, the last `limit`.
    pub fn klines(
        &self,
        symbol: &str,
        interval_ms: i64,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Option<Vec<Candle>> {
        let m = self.symbols.get(symbol)?;
        let base = m.interval_ms;
        if interval_ms < base || interval_ms % base != 0 {
            return None;
        }
        let closed = m.closed();
        let lo = start.map_or(0, |s| {
            closed.partition_point(|c| c.open_time < s.saturating_sub(interval_ms))
        });
        let hi = end.map_or(closed.len(), |e| {
            closed.partition_point(|c| c.open_time <= e)
        });
        // Keep the aggregation work bounded by what is asked for.
        let per = usize::try_from(interval_ms / base).unwrap_or(1).max(1);
        let lo = if start.is_none() {
            hi.saturating_sub(per * (limit + 2))
        } else {
            lo
        };
        let slice = &closed[lo.min(hi)..hi];
        let mut out = if interval_ms == base {
            slice.to_vec()
        } else {
            let mut v = qt_candles::resample(slice, base, interval_ms).ok()?;
            // resample drops the last bucket if the input ends inside it; a bucket that ends
            // exactly at the cursor is closed and kept by it.
            v.retain(|c| c.open_time + interval_ms <= m.now_ms());
            v
        };
        out.retain(|c| {
            start.is_none_or(|s| c.open_time >= s) && end.is_none_or(|e| c.open_time <= e)
        });
        if start.is_some() {
            out.truncate(limit);
        } else if out.len() > limit {
            out.drain(..out.len() - limit);
        }
        Some(out)
    }
}

/// Restorable market position (the part of the market that is state).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MarketCursor {
    pub cursors: BTreeMap<String, usize>,
    pub marks: BTreeMap<String, Decimal>,
}

impl Market {
    pub fn cursor(&self) -> MarketCursor {
        MarketCursor {
            cursors: self
                .symbols
                .iter()
                .map(|(k, m)| (k.clone(), m.cursor))
                .collect(),
            marks: self
                .symbols
                .iter()
                .filter_map(|(k, m)| m.mark_override.map(|p| (k.clone(), p)))
                .collect(),
        }
    }

    /// Move every symbol to a saved cursor (synthetic series regenerate identically).
    pub fn restore(&mut self, c: &MarketCursor) {
        for (k, m) in &mut self.symbols {
            if let Some(&cur) = c.cursors.get(k) {
                while m.synthetic && m.candles.len() < cur {
                    m.extend_synthetic(1_000);
                }
                m.cursor = cur.min(m.candles.len()).max(1);
            }
            m.mark_override = c.marks.get(k).copied();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_walk_is_deterministic_per_seed_and_well_formed() {
        let cfg = SimConfig {
            warmup_candles: 50,
            ..SimConfig::default()
        };
        let a = Market::build(&cfg).unwrap();
        let b = Market::build(&cfg).unwrap();
        let (ca, cb) = (&a.symbols["BTCUSDT"].candles, &b.symbols["BTCUSDT"].candles);
        assert_eq!(ca, cb);
        assert!(ca.iter().all(|c| Bar::from(c).is_valid()));
        let other = Market::build(&SimConfig { seed: 7, ..cfg }).unwrap();
        assert_ne!(other.symbols["BTCUSDT"].candles[10], ca[10]);
    }

    #[test]
    fn klines_never_include_candles_after_the_cursor_and_aggregate_hours() {
        let cfg = SimConfig {
            warmup_candles: 100,
            ..SimConfig::default()
        };
        let m = Market::build(&cfg).unwrap();
        let s = &m.symbols["BTCUSDT"];
        let k = m.klines("BTCUSDT", 300_000, None, None, 1_500).unwrap();
        assert_eq!(k.len(), 100);
        assert_eq!(k.last().unwrap().open_time, s.current().unwrap().open_time);
        let h = m.klines("BTCUSDT", 3_600_000, None, None, 5).unwrap();
        assert!(!h.is_empty() && h.len() <= 5);
        assert!(h.iter().all(|c| c.open_time + 3_600_000 <= s.now_ms()));
        assert!(m.klines("BTCUSDT", 60_000, None, None, 5).is_none());
    }
}
