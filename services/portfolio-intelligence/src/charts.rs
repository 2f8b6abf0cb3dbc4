//! What the dashboard's charts draw: each symbol's last candles (from `qt:market`) with the
//! entries and exits of its positions (from the book: open positions and closed trades) and
//! the stops and targets exit-brain asked for (`ProtectPosition` on `qt:intents`); buy-and-hold
//! of the symbols traded beside the equity; the long/short balance of the open positions.
//! Pure: events and times come in as arguments.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use qt_events::api::{
    CandleBar, ChartLevel, ChartMark, ClosedTrade, LongShortBalance, OpenPosition, PositionView,
    SymbolChart,
};
use qt_events::{Envelope, Event};
use rust_decimal::Decimal;

/// Stops and targets kept per symbol (old ones fall off first).
const LEVELS_KEPT: usize = 200;

/// Candles and protective levels per symbol.
#[derive(Debug, Default)]
pub struct Charts {
    /// Candles kept per symbol.
    keep: usize,
    candles: BTreeMap<String, VecDeque<CandleBar>>,
    interval: BTreeMap<String, String>,
    levels: BTreeMap<String, VecDeque<ChartLevel>>,
}

impl Charts {
    pub fn new(keep: usize) -> Self {
        Self {
            keep: keep.max(2),
            ..Self::default()
        }
    }

    /// Applies a candle, a `ProtectPosition` or a close. Idempotent (a candle is identified by
    /// its open time, a level by its leg and start).
    pub fn on_event(&mut self, env: &Envelope) {
        match &env.event {
            Event::CandleClosed(c) => {
                let bar = CandleBar {
                    t: c.open_time,
                    o: c.open,
                    h: c.high,
                    l: c.low,
                    c: c.close,
                };
                self.interval.insert(c.symbol.clone(), c.interval.clone());
                let q = self.candles.entry(c.symbol.clone()).or_default();
                match q.iter().rposition(|b| b.t <= bar.t) {
                    Some(i) if q[i].t == bar.t => q[i] = bar,
                    Some(i) => q.insert(i + 1, bar),
                    None => q.push_front(bar),
                }
                while q.len() > self.keep {
                    q.pop_front();
                }
            }
            Event::ProtectPosition(p) => {
                let mut legs: Vec<(&str, &str, Decimal)> = Vec::new();
                if let Some(s) = &p.stop {
                    legs.push(("stop", "stop", s.trigger_price));
                }
                for t in &p.take_profits {
                    legs.push(("take_profit", &t.leg, t.trigger_price));
                }
                if let Some(t) = &p.trailing {
                    legs.push(("trailing", "trailing", t.activation_price));
                }
                let q = self.levels.entry(p.symbol.clone()).or_default();
                for (kind, leg, price) in legs {
                    if q.iter().any(|l| l.leg == leg && l.from == env.ts) {
                        continue;
                    }
                    // A leg named again replaces the one in place.
                    for l in q.iter_mut().filter(|l| l.leg == leg && l.to.is_none()) {
                        l.to = Some(env.ts);
                    }
                    q.push_back(ChartLevel {
                        kind: kind.into(),
                        leg: leg.into(),
                        price,
                        from: env.ts,
                        to: None,
                    });
                }
                while q.len() > LEVELS_KEPT {
                    q.pop_front();
                }
            }
            Event::PositionClosed(p) => {
                if let Some(q) = self.levels.get_mut(&p.symbol) {
                    for l in q.iter_mut().filter(|l| l.to.is_none()) {
                        l.to = Some(p.closed_at);
                    }
                }
            }
            _ => {}
        }
    }

    /// The symbols with candles, with their interval and how many candles are kept.
    pub fn symbols(&self) -> Vec<(String, String, usize)> {
        self.candles
            .iter()
            .map(|(s, q)| {
                let iv = self.interval.get(s).cloned().unwrap_or_default();
                (s.clone(), iv, q.len())
            })
            .collect()
    }

    /// How many candles are kept per symbol.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Adds candles read from the exchange (a backfill at start), each once.
    pub fn backfill(&mut self, symbol: &str, interval: &str, bars: Vec<CandleBar>) {
        let q = self.candles.entry(symbol.to_owned()).or_default();
        self.interval
            .entry(symbol.to_owned())
            .or_insert_with(|| interval.to_owned());
        for bar in bars {
            match q.iter().position(|b| b.t >= bar.t) {
                Some(i) if q[i].t == bar.t => {}
                Some(i) => q.insert(i, bar),
                None => q.push_back(bar),
            }
        }
        while q.len() > self.keep {
            q.pop_front();
        }
    }

    /// The close of `symbol`'s latest candle closed at `t` (its close time at or before `t`:
    /// never a candle still open at `t`).
    fn close_at(&self, symbol: &str, t: i64) -> Option<Decimal> {
        let q = self.candles.get(symbol)?;
        let iv = self.interval.get(symbol).map_or(0, |i| interval_ms(i));
        let i = q.partition_point(|b| b.t + iv <= t + 1);
        i.checked_sub(1).map(|i| q[i].c)
    }

    /// One chart per symbol with candles, the entries and exits and the levels within them.
    pub fn view(
        &self,
        positions: &BTreeMap<String, OpenPosition>,
        trades: &[ClosedTrade],
    ) -> Vec<SymbolChart> {
        self.candles
            .iter()
            .filter_map(|(sym, q)| {
                let (first, last) = (q.front()?, q.back()?);
                let interval = self.interval.get(sym).cloned().unwrap_or_default();
                let end = last.t + interval_ms(&interval);
                let within = |t: i64| t >= first.t && t <= end;
                let mut marks = Vec::new();
                for t in trades.iter().filter(|t| &t.symbol == sym) {
                    if within(t.opened_at) {
                        marks.push(ChartMark {
                            ts: t.opened_at,
                            price: t.entry_price,
                            kind: "entry".into(),
                            side: t.side.clone(),
                            label: t.model_version.clone(),
                        });
                    }
                    if within(t.closed_at) {
                        marks.push(ChartMark {
                            ts: t.closed_at,
                            price: t.exit_price,
                            kind: "exit".into(),
                            side: t.side.clone(),
                            label: t.reason.clone(),
                        });
                    }
                }
                if let Some(p) = positions.get(sym).filter(|p| within(p.opened_at)) {
                    marks.push(ChartMark {
                        ts: p.opened_at,
                        price: p.entry_price,
                        kind: "entry".into(),
                        side: p.side.clone(),
                        label: p.model_version.clone(),
                    });
                }
                marks.sort_by_key(|m| m.ts);
                let levels = self
                    .levels
                    .get(sym)
                    .map(|l| {
                        l.iter()
                            .filter(|l| l.from <= end && l.to.is_none_or(|to| to >= first.t))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                Some(SymbolChart {
                    symbol: sym.clone(),
                    interval,
                    candles: q.iter().cloned().collect(),
                    marks,
                    levels,
                })
            })
            .collect()
    }

    /// Buy-and-hold of those of `symbols` with candles, equal weight, on the times of
    /// `equity`: from the first point at which each of them has a closed candle, starting at
    /// the equity of that point, each one's share following its closes. Returns the symbols
    /// held and the curve (empty when none has a candle).
    pub fn buy_and_hold(
        &self,
        symbols: &BTreeSet<String>,
        equity: &[(i64, Decimal)],
    ) -> (Vec<String>, Vec<(i64, Decimal)>) {
        let held: Vec<String> = symbols
            .iter()
            .filter(|s| self.candles.get(*s).is_some_and(|q| !q.is_empty()))
            .cloned()
            .collect();
        if held.is_empty() {
            return (held, Vec::new());
        }
        let at =
            |t: i64| -> Option<Vec<Decimal>> { held.iter().map(|s| self.close_at(s, t)).collect() };
        let Some((start, base, e0)) = equity.iter().find_map(|(t, e)| at(*t).map(|c| (*t, c, *e)))
        else {
            return (held, Vec::new());
        };
        if base.iter().any(|c| c.is_zero()) {
            return (held, Vec::new());
        }
        let n = Decimal::from(base.len() as u64);
        let curve = equity
            .iter()
            .filter(|(t, _)| *t >= start)
            .filter_map(|(t, _)| {
                let now = at(*t)?;
                let growth: Decimal =
                    now.iter().zip(&base).map(|(c, b)| c / b).sum::<Decimal>() / n;
                Some((*t, (e0 * growth).round_dp(2)))
            })
            .collect();
        (held, curve)
    }
}

/// The symbols traded: those of the closed trades kept and of the open positions.
pub fn traded_symbols(
    positions: &BTreeMap<String, OpenPosition>,
    trades: &[ClosedTrade],
) -> BTreeSet<String> {
    positions
        .keys()
        .cloned()
        .chain(trades.iter().map(|t| t.symbol.clone()))
        .collect()
}

/// The long and short sides of the open positions, by notional at the mark.
pub fn long_short(positions: &[PositionView]) -> LongShortBalance {
    let mut b = LongShortBalance::default();
    for p in positions {
        if p.position.is_long() {
            b.long_notional += p.notional.abs();
            b.long_positions += 1;
        } else {
            b.short_notional += p.notional.abs();
            b.short_positions += 1;
        }
    }
    b.net_notional = b.long_notional - b.short_notional;
    let gross = b.long_notional + b.short_notional;
    b.long_share = if gross.is_zero() {
        0.5
    } else {
        use rust_decimal::prelude::ToPrimitive;
        (b.long_notional / gross).to_f64().unwrap_or(0.5)
    };
    b
}

/// An interval name's length in ms (`5m` → 300 000); 0 when unknown.
pub fn interval_ms(name: &str) -> i64 {
    let (n, unit) = name.split_at(name.len().saturating_sub(1));
    let n: i64 = n.parse().unwrap_or(0);
    n * match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn candle(t: i64, c: Decimal) -> Envelope {
        let clock = qt_events::clock::ManualClock::new(t);
        Envelope::new(
            Event::CandleClosed(qt_events::CandleClosed {
                symbol: "BTCUSDT".into(),
                interval: "5m".into(),
                open_time: t,
                close_time: t + 299_999,
                open: c,
                high: c,
                low: c,
                close: c,
                volume: dec!(1),
                quote_volume: dec!(1),
                trades: 1,
            }),
            "t",
            &clock,
        )
    }

    #[test]
    fn candles_are_kept_in_order_once_each_and_buy_and_hold_follows_their_closes() {
        let mut ch = Charts::new(3);
        for (t, c) in [
            (600_000, dec!(110)),
            (0, dec!(100)),
            (300_000, dec!(105)),
            (300_000, dec!(105)),
        ] {
            ch.on_event(&candle(t, c));
        }
        let v = ch.view(&BTreeMap::new(), &[]);
        assert_eq!(
            v[0].candles.iter().map(|b| b.t).collect::<Vec<_>>(),
            [0, 300_000, 600_000]
        );
        ch.on_event(&candle(900_000, dec!(120)));
        assert_eq!(
            ch.view(&BTreeMap::new(), &[])[0].candles.len(),
            3,
            "the oldest falls off"
        );
        let syms = BTreeSet::from(["BTCUSDT".to_string(), "SOLUSDT".to_string()]);
        // At 600 000 the candle opened at 300 000 has just closed (105); the one opened at
        // 600 000 is still open then. 0 is no longer kept: holding starts at 600 000.
        let eq = [
            (299_999, dec!(1000)),
            (600_000, dec!(1000)),
            (1_200_000, dec!(990)),
        ];
        let (held, curve) = ch.buy_and_hold(&syms, &eq);
        assert_eq!(held, ["BTCUSDT"], "only symbols with candles are held");
        assert_eq!(curve, [(600_000, dec!(1000)), (1_200_000, dec!(1142.86))]);
        assert!(
            ch.buy_and_hold(&BTreeSet::from(["ETHUSDT".to_string()]), &eq)
                .1
                .is_empty()
        );
    }
}
