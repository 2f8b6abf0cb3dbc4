//! Labels from the trades the live exits make: for each candle, a long and a short entered at
//! the next candle's open (as the backtester fills a market entry) are run through the exit
//! plan exit-brain will manage them with ([`qt_exits::simulate`]: the volatility-adaptive
//! ladder, the stop, break-even, trailing and the time stop), and each side's gross return and
//! holding time are kept. A side "wins" when that return beats the round trip's costs.

use qt_candles::Candle;
use qt_events::Decimal;
use qt_events::{PositionSide, SignalAction};
use qt_exits::{EntrySpec, ExitConfig, ExitPlan, SymbolProfile, simulate};
use qt_matching::Bar;
use qt_risk::SymbolFilters;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::ev::TradeCosts;

/// How rows are labelled: the live exit settings, how long a trade is followed, and the costs a
/// trade must beat to count as a win.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelConfig {
    /// The exits that manage every trade (exit-brain's and the backtester's settings).
    pub exits: ExitConfig,
    /// Most candles a trade is followed, the entry candle included; a row whose trade is
    /// still open then is left unlabelled. Also the purge between training and test rows.
    /// Default 160: past the default 12 h time stop at 5m.
    pub horizon: usize,
    /// Fees, slippage and funding of a round trip.
    pub costs: TradeCosts,
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig {
            exits: ExitConfig::default(),
            horizon: 160,
            costs: TradeCosts::default(),
        }
    }
}

impl LabelConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        self.exits
            .validate()
            .map_err(|e| ModelError::Params(format!("exits: {e}")))?;
        self.costs.validate()?;
        if self.horizon == 0 {
            return Err(ModelError::Params("label horizon must be positive".into()));
        }
        Ok(())
    }
}

/// How one side's trade entered after a candle ends under the exit plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Gross return on the entry notional, in the side's favour (0.01 = +1%).
    pub gross_return: f64,
    /// Candles the trade was held, the entry candle included.
    pub held: usize,
}

impl Outcome {
    /// The return after the round trip's costs for the time held.
    pub fn net_return(&self, costs: &TradeCosts, interval_ms: i64) -> f64 {
        self.gross_return - costs.round_trip(self.held as f64 * interval_ms as f64 / 3_600_000.0)
    }
}

/// Both sides' outcomes of an entry after one candle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pub long: Outcome,
    pub short: Outcome,
}

impl Outcomes {
    /// The three-way label: BUY when the long nets a gain after costs and more than the short,
    /// SELL when the short does, HOLD otherwise.
    pub fn label(&self, costs: &TradeCosts, interval_ms: i64) -> SignalAction {
        let l = self.long.net_return(costs, interval_ms);
        let s = self.short.net_return(costs, interval_ms);
        if l > 0.0 && l > s {
            SignalAction::Buy
        } else if s > 0.0 && s > l {
            SignalAction::Sell
        } else {
            SignalAction::Hold
        }
    }
}

/// Both sides' outcomes for every candle: entries at the next candle's open, with the daily
/// realized volatility `volatility[i]` known at candle `i` choosing the ladder (NaN: the calm
/// one). `None` for the last `horizon` candles (whatever their trades did: labelling only the
/// quick ones near the end of the data would bias the rows there), where the next candle is
/// missing, and where a trade outlives the horizon.
pub fn exit_outcomes(
    candles: &[Candle],
    volatility: &[f64],
    interval_ms: i64,
    cfg: &LabelConfig,
) -> Vec<Option<Outcomes>> {
    let l = Labeller::new(candles, volatility, interval_ms, cfg);
    (0..candles.len()).map(|i| l.outcomes(i)).collect()
}

/// One series' labelling, candle by candle ([`exit_outcomes`] runs it on every candle; a
/// caller that needs only some rows' outcomes asks for those).
pub(crate) struct Labeller<'a> {
    candles: &'a [Candle],
    bars: Vec<Bar>,
    volatility: &'a [f64],
    interval_ms: i64,
    cfg: &'a LabelConfig,
    profile: SymbolProfile,
}

impl<'a> Labeller<'a> {
    pub(crate) fn new(
        candles: &'a [Candle],
        volatility: &'a [f64],
        interval_ms: i64,
        cfg: &'a LabelConfig,
    ) -> Self {
        Labeller {
            candles,
            bars: candles.iter().map(Bar::from).collect(),
            volatility,
            interval_ms,
            cfg,
            profile: SymbolProfile::default(),
        }
    }

    /// Whether candle `i` is followed by a full horizon and by its entry candle (the next one,
    /// without a gap, at a positive open): the conditions of a row that do not depend on what
    /// the trades do.
    pub(crate) fn can_enter(&self, i: usize) -> bool {
        i + 1 + self.cfg.horizon <= self.bars.len()
            && self.bars[i + 1].open > Decimal::ZERO
            && self.bars[i + 1].open_time == self.candles[i].open_time + self.interval_ms
    }

    /// Whether the time stop closes candle `i`'s trades within the horizon whatever the prices
    /// do: some candle of the horizon is seen (at its close) at or after the time stop's due
    /// time, as [`qt_exits::ExitPlan::on_range`] fires it. Then, for a candle that
    /// [can enter](Self::can_enter), both outcomes exist under any exit distances (the plan is
    /// built from a validated configuration and a positive price, so it cannot fail), and only
    /// the outcomes' values depend on the plan. Requires `can_enter(i)`.
    pub(crate) fn surely_closes(&self, i: usize) -> bool {
        let Some(minutes) = self.cfg.exits.time_stop_minutes else {
            return false;
        };
        let window = &self.bars[i + 1..=i + self.cfg.horizon];
        let due = window[0]
            .open_time
            .saturating_add(i64::from(minutes) * 60_000);
        // A candle is seen at its close, as `simulate` sees it.
        window.iter().any(|b| {
            let now = b.open_time + self.interval_ms - 1;
            now >= due
        })
    }

    /// Both sides' outcomes of candle `i` (see [`exit_outcomes`]).
    pub(crate) fn outcomes(&self, i: usize) -> Option<Outcomes> {
        if !self.can_enter(i) {
            return None;
        }
        Some(Outcomes {
            long: self.side(i, PositionSide::Long)?,
            short: self.side(i, PositionSide::Short)?,
        })
    }

    fn side(&self, i: usize, side: PositionSide) -> Option<Outcome> {
        let entry = &self.bars[i + 1];
        let spec = EntrySpec {
            side,
            price: entry.open,
            qty: Decimal::ONE,
            opened_ms: entry.open_time,
            filters: SymbolFilters::NONE,
        };
        let vol = self.volatility.get(i).copied().unwrap_or(f64::NAN);
        let plan = ExitPlan::new(spec, vol, &self.profile, &self.cfg.exits).ok()?;
        let t = simulate(
            plan,
            &self.bars[i + 1..=i + self.cfg.horizon],
            self.interval_ms,
        )?;
        Some(Outcome {
            gross_return: t.gross_return,
            held: t.held,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::prelude::FromPrimitive;

    const M5: i64 = 300_000;

    fn bar(k: i64, open: f64, high: f64, low: f64, close: f64) -> Candle {
        let d = |x: f64| Decimal::from_f64(x).unwrap_or_default();
        Candle::new(k * M5, d(open), d(high), d(low), d(close), Decimal::ONE)
    }

    /// Exits with one leg at +2%, a stop at −2%, no trailing, no break-even, a 15-minute time
    /// stop: simple enough to compute by hand.
    fn cfg() -> LabelConfig {
        let two = Decimal::TWO;
        LabelConfig {
            exits: ExitConfig {
                low_vol_targets_pct: vec![two],
                high_vol_targets_pct: vec![two],
                leg_fractions: vec![Decimal::ONE],
                stop_pct: two,
                break_even_after_first_leg: false,
                trailing_activation_pct: None,
                time_stop_minutes: Some(15),
                ..ExitConfig::default()
            },
            horizon: 4,
            costs: TradeCosts::default(),
        }
    }

    #[test]
    fn each_side_is_entered_at_the_next_open_and_run_through_the_exit_plan() {
        let c = [
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 101.0, 99.0, 100.5),
            bar(2, 100.5, 102.5, 100.0, 102.0), // long target 102 reached
            bar(3, 102.0, 102.0, 101.0, 101.0),
            bar(4, 101.0, 101.5, 100.5, 101.0),
        ];
        let o = exit_outcomes(&c, &[f64::NAN; 5], M5, &cfg());
        let first = o[0].expect("labelled");
        assert!((first.long.gross_return - 0.02).abs() < 1e-12, "{first:?}");
        assert_eq!(first.long.held, 2);
        // The short is not stopped (102 is its stop and the high is 102.5, in candle 2).
        assert!((first.short.gross_return + 0.02).abs() < 1e-12, "{first:?}");
        assert_eq!(first.label(&TradeCosts::default(), M5), SignalAction::Buy);
        // The last `horizon` candles are not labelled.
        assert!(o[1].is_none() && o[4].is_none());
    }

    #[test]
    fn a_time_stop_closes_at_the_candle_close_and_a_small_gain_is_no_win_after_costs() {
        let c = [
            bar(0, 100.0, 100.0, 100.0, 100.0),
            bar(1, 100.0, 100.5, 99.5, 100.0),
            bar(2, 100.0, 100.5, 99.5, 100.0),
            bar(3, 100.0, 100.5, 99.9, 100.1),
            bar(4, 100.1, 100.2, 100.0, 100.1),
        ];
        let o = exit_outcomes(&c, &[f64::NAN; 5], M5, &cfg())[0].expect("labelled");
        // Opened at candle 1's open (5:00): the 15-minute stop is due at 20:00, first seen at
        // candle 4's close (24:59.999), where it closes at 100.1.
        assert_eq!(o.long.held, 4);
        assert!((o.long.gross_return - 0.001).abs() < 1e-12, "{o:?}");
        assert!((o.short.gross_return + 0.001).abs() < 1e-12, "{o:?}");
        // +0.1% gross does not cover 2 × (5 + 2) bp: no side wins.
        assert_eq!(o.label(&TradeCosts::default(), M5), SignalAction::Hold);
    }

    #[test]
    fn a_gap_in_the_candles_leaves_the_row_unlabelled() {
        let mut c = vec![bar(0, 100.0, 100.0, 100.0, 100.0)];
        c.extend((2..8).map(|k| bar(k, 100.0, 103.0, 99.9, 100.0)));
        let o = exit_outcomes(&c, &[f64::NAN; 7], M5, &cfg());
        assert_eq!(o[0], None, "the candle after 0 is missing");
        assert!(o[1].is_some());
    }
}
