//! The baselines traded beside the strategy: random entries with the same exits and trade
//! rate, and buy-and-hold.

use std::collections::BTreeMap;

use qt_candles::Candle;
use qt_features::FeatureVector;
use qt_models::{Model, Signal, SignalAction};
use rust_decimal::Decimal;

use crate::engine::{BacktestConfig, BacktestOutcome, EquityPoint, SymbolSeries, Trade};

/// The random-entry baseline: on each candle, BUY or SELL (even odds) with probability `p`.
/// The exits, sizing and limits are the backtest's, so only the entry decision is random.
#[derive(Debug)]
pub struct RandomEntries {
    state: u64,
    p: f64,
}

impl RandomEntries {
    /// A path seeded by `seed`; `p` is the chance of an entry signal per candle.
    pub fn new(seed: u64, p: f64) -> Self {
        Self {
            state: splitmix(seed) | 1,
            p: p.clamp(0.0, 1.0),
        }
    }

    fn next_f64(&mut self) -> f64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(super) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Model for RandomEntries {
    fn name(&self) -> &str {
        "random"
    }
    fn version(&self) -> &str {
        "random"
    }
    fn predict(&mut self, _: &FeatureVector, _: &Candle) -> Signal {
        let u = self.next_f64();
        if u < self.p / 2.0 {
            Signal::new(SignalAction::Buy, 1.0)
        } else if u < self.p {
            Signal::new(SignalAction::Sell, 1.0)
        } else {
            Signal::hold(1.0)
        }
    }
}

/// Buy-and-hold over `[from, to)`, equal weight: at the first candle the equity is split evenly
/// across the symbols and bought at the open (taker fee and slippage of the fill model), held
/// to the end as a long perpetual position at 1× (paying or earning funding), and sold at the
/// last close (taker fee). Equity is marked at each close on the strategy's time grid.
pub fn buy_and_hold(
    series: &[SymbolSeries],
    cfg: &BacktestConfig,
    from: i64,
    to: i64,
) -> BacktestOutcome {
    let n = series
        .iter()
        .filter(|s| {
            s.candles
                .iter()
                .any(|c| c.open_time >= from && c.open_time < to)
        })
        .count();
    let mut out = BacktestOutcome {
        trades: Vec::new(),
        equity: Vec::new(),
        candles: 0,
        rejections: BTreeMap::new(),
        profiles: BTreeMap::new(),
        initial_equity: cfg.initial_equity,
        leverage: 1,
        breaker_tripped_at: None,
    };
    if n == 0 {
        return out;
    }
    let share = cfg.initial_equity / Decimal::from(n);
    let slip = cfg.fill.slippage;
    let mut cash = cfg.initial_equity;
    // (qty, last close, candles of the window, funding cursor) per symbol
    struct Held<'a> {
        symbol: &'a str,
        qty: Decimal,
        entry: Decimal,
        entry_time: i64,
        last: Decimal,
        fees: Decimal,
        funding: Decimal,
        candles: &'a [Candle],
        cursor: usize,
    }
    let mut held: Vec<Held<'_>> = Vec::new();
    for s in series {
        let lo = s.candles.partition_point(|c| c.open_time < from);
        let hi = s.candles.partition_point(|c| c.open_time < to);
        let Some(first) = s.candles[lo..hi].first() else {
            continue;
        };
        let price = first.open * (Decimal::ONE + slip);
        let fee = cfg.fill.fee(share, qt_matching::Liquidity::Taker);
        let qty = (share - fee) / price;
        cash -= share;
        held.push(Held {
            symbol: &s.symbol,
            qty,
            entry: price,
            entry_time: first.open_time,
            last: first.open,
            fees: fee,
            funding: Decimal::ZERO,
            candles: &s.candles[lo..hi],
            cursor: 0,
        });
    }
    let mut funding =
        crate::funding::FundingClock::new(&cfg.funding, held.iter().map(|h| h.symbol));
    let mut t = from;
    let iv = cfg.interval_ms;
    while t < to {
        let mut any = false;
        for (k, h) in held.iter_mut().enumerate() {
            while let Some(c) = h.candles.get(h.cursor) {
                if c.open_time > t {
                    break;
                }
                if let Some(rate) = funding.due(k, c.open_time, iv) {
                    let paid = h.qty * c.open * rate;
                    h.funding += paid;
                    cash -= paid;
                }
                h.last = c.close;
                h.cursor += 1;
                any = true;
                out.candles += 1;
            }
        }
        if any {
            let value: Decimal = held.iter().map(|h| h.qty * h.last).sum();
            out.equity.push(EquityPoint {
                time_ms: t + iv - 1,
                equity: cash + value,
                exposure: value,
            });
        }
        t += iv;
    }
    for h in &held {
        let exit = h.last * (Decimal::ONE - slip);
        let fee = cfg.fill.fee(h.qty * exit, qt_matching::Liquidity::Taker);
        let gross = h.qty * (exit - h.entry);
        cash += h.qty * exit - fee;
        out.trades.push(Trade {
            symbol: h.symbol.to_owned(),
            side: qt_events::PositionSide::Long,
            entry_time: h.entry_time,
            exit_time: to - 1,
            entry_price: h.entry,
            exit_price: exit,
            qty: h.qty,
            gross_pnl: gross,
            fees: h.fees + fee,
            funding: h.funding,
            net_pnl: gross - h.fees - fee - h.funding,
            legs_hit: 0,
            exit_reason: crate::ExitReason::EndOfData,
            stop_price: Decimal::ZERO,
            targets: Vec::new(),
        });
    }
    if let Some(last) = out.equity.last_mut() {
        last.equity = cash;
        last.exposure = Decimal::ZERO;
    }
    out
}

pub(super) fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
