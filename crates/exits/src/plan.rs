//! [`ExitPlan`]: the exits of one position and how they move as the trade unfolds.

use qt_events::{PositionSide, ProtectPosition, StopLeg, TakeProfitLeg, WorkingType};
use qt_risk::SymbolFilters;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ExitError;
use crate::config::ExitConfig;
use crate::profile::{SymbolProfile, TradeOutcome};

/// The entry a plan is built for.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrySpec {
    pub side: PositionSide,
    /// Entry (average fill) price.
    pub price: Decimal,
    /// Quantity ordered; legs are sized to it until fills say otherwise.
    pub qty: Decimal,
    /// When the position opened, ms.
    pub opened_ms: i64,
    /// The symbol's exchange filters: prices to the tick, quantities to the step.
    pub filters: SymbolFilters,
}

/// One take-profit leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// `tp1`, `tp2`, …
    pub name: String,
    /// Distance from the entry, percent, after the profile multiplier.
    pub target_pct: Decimal,
    pub price: Decimal,
    /// Share of the position this leg closes.
    pub fraction: Decimal,
    /// Quantity this leg closes (zero when it rounds below the step).
    pub qty: Decimal,
    /// Quantity filled so far.
    pub filled: Decimal,
}

impl Leg {
    /// True once the leg has filled in full (a zero-size leg counts as done).
    pub fn is_done(&self) -> bool {
        self.filled >= self.qty
    }
    /// Quantity still resting.
    pub fn open_qty(&self) -> Decimal {
        (self.qty - self.filled).max(Decimal::ZERO)
    }
}

/// Trailing-stop state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trailing {
    pub activation_price: Decimal,
    pub callback_pct: Decimal,
    pub active: bool,
    /// Smallest move of the stop, a share of the callback distance
    /// ([`crate::ExitConfig::trailing_min_step`]; 0 in plans stored before it existed).
    #[serde(default)]
    pub min_step: Decimal,
}

/// Why the stop moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopMove {
    BreakEven,
    Trailing,
}

/// What the owner of a plan must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitAction {
    /// Replace the protective stop with one at this price.
    MoveStop { price: Decimal, why: StopMove },
    /// The legs' quantities changed (partial entry fill): re-place the take-profits.
    ResizeLegs,
    /// Close what is left at market: the time stop ran out.
    TimeStop { qty: Decimal },
}

/// The exits of one position: a take-profit ladder, a stop, break-even, trailing and a time stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitPlan {
    pub side: PositionSide,
    pub entry_price: Decimal,
    pub opened_ms: i64,
    /// Entry quantity the legs are sized to (the filled quantity once fills arrive).
    pub qty: Decimal,
    /// Quantity still held.
    pub open_qty: Decimal,
    pub legs: Vec<Leg>,
    pub stop_price: Decimal,
    /// Stop distance, percent, after the profile multiplier.
    pub stop_pct: Decimal,
    pub trailing: Option<Trailing>,
    /// When the time stop closes what is left, ms.
    pub time_stop_ms: Option<i64>,
    pub break_even_after_first_leg: bool,
    pub break_even_offset_pct: Decimal,
    pub break_even_done: bool,
    pub time_stop_fired: bool,
    /// Best and worst prices seen since the entry (for excursions and trailing).
    pub best_price: Decimal,
    pub worst_price: Decimal,
    pub filters: SymbolFilters,
    /// Close on the opposite signal ([`ExitConfig::close_on_flip`]); false in plans stored
    /// before it existed.
    #[serde(default)]
    pub close_on_flip: bool,
    /// The opposite signal has asked for the close (asked once).
    #[serde(default)]
    pub flip_fired: bool,
}

fn pct(p: Decimal) -> Decimal {
    p / Decimal::ONE_HUNDRED
}

impl ExitPlan {
    /// Builds the plan of a new position from the symbol's realized volatility (a fraction),
    /// its learned profile and the configuration.
    pub fn new(
        entry: EntrySpec,
        volatility: f64,
        profile: &SymbolProfile,
        config: &ExitConfig,
    ) -> Result<ExitPlan, ExitError> {
        config.validate()?;
        if entry.price <= Decimal::ZERO || entry.qty <= Decimal::ZERO {
            return Err(ExitError::InvalidEntry {
                price: entry.price,
                qty: entry.qty,
            });
        }
        let f = entry.filters;
        let long = entry.side == PositionSide::Long;
        // Targets rounded toward the entry (never further than planned), the stop away from it
        // would loosen risk, so the stop is rounded toward the entry as well.
        let toward_entry = |p: Decimal| {
            if long {
                f.floor_price(p)
            } else {
                f.ceil_price(p)
            }
        };
        let away = |distance_pct: Decimal| {
            if long {
                entry.price * (Decimal::ONE + pct(distance_pct))
            } else {
                entry.price * (Decimal::ONE - pct(distance_pct))
            }
        };
        let legs = config
            .targets_pct(volatility)
            .into_iter()
            .zip(&config.leg_fractions)
            .enumerate()
            .map(|(i, (t, fraction))| {
                let target_pct = t * profile.tp_mult;
                Leg {
                    name: format!("tp{}", i + 1),
                    target_pct,
                    price: toward_entry(away(target_pct)),
                    fraction: *fraction,
                    qty: Decimal::ZERO,
                    filled: Decimal::ZERO,
                }
            })
            .collect();
        let stop_pct = config.stop_distance_pct(volatility) * profile.stop_mult;
        let stop_raw = if long {
            entry.price * (Decimal::ONE - pct(stop_pct))
        } else {
            entry.price * (Decimal::ONE + pct(stop_pct))
        };
        let stop_price = if long {
            f.ceil_price(stop_raw)
        } else {
            f.floor_price(stop_raw)
        };
        let trailing = if config.chandelier_vol_mult.is_some() {
            // The chandelier: trailing from the entry on, at the stop's own distance.
            Some(Trailing {
                activation_price: entry.price,
                callback_pct: stop_pct,
                active: true,
                min_step: config.trailing_min_step,
            })
        } else {
            config.trailing_activation_pct.map(|a| Trailing {
                activation_price: toward_entry(away(a * profile.tp_mult)),
                callback_pct: config.trailing_callback_pct,
                active: false,
                min_step: config.trailing_min_step,
            })
        };
        let mut plan = ExitPlan {
            side: entry.side,
            entry_price: entry.price,
            opened_ms: entry.opened_ms,
            qty: Decimal::ZERO,
            open_qty: Decimal::ZERO,
            legs,
            stop_price,
            stop_pct,
            trailing,
            time_stop_ms: config
                .time_stop_minutes
                .map(|m| entry.opened_ms.saturating_add(i64::from(m) * 60_000)),
            break_even_after_first_leg: config.break_even_after_first_leg,
            break_even_offset_pct: config.break_even_offset_pct,
            break_even_done: false,
            time_stop_fired: false,
            best_price: entry.price,
            worst_price: entry.price,
            filters: f,
            close_on_flip: config.close_on_flip,
            flip_fired: false,
        };
        plan.size_legs(entry.qty);
        Ok(plan)
    }

    fn is_long(&self) -> bool {
        self.side == PositionSide::Long
    }

    /// Splits `qty` over the legs by their fractions, each floored to the step; the last leg takes
    /// the remainder so the legs always add up to the position.
    fn size_legs(&mut self, qty: Decimal) {
        let closed_by_legs: Decimal = self.legs.iter().map(|l| l.filled).sum();
        self.open_qty = (qty - closed_by_legs).max(Decimal::ZERO);
        self.qty = qty;
        let n = self.legs.len();
        let mut assigned = Decimal::ZERO;
        for (i, leg) in self.legs.iter_mut().enumerate() {
            let q = if i + 1 == n {
                qty - assigned
            } else {
                self.filters.round_qty(qty * leg.fraction)
            };
            leg.qty = q.max(leg.filled);
            assigned += leg.qty;
        }
    }

    /// The entry order filled further: `filled_total` is its cumulative filled quantity. The
    /// legs are resized to what is actually held.
    pub fn on_entry_fill(&mut self, filled_total: Decimal) -> Vec<ExitAction> {
        if filled_total <= Decimal::ZERO || filled_total == self.qty {
            return Vec::new();
        }
        self.size_legs(filled_total);
        vec![ExitAction::ResizeLegs]
    }

    /// A take-profit leg filled `qty`. After the first leg, the stop moves to break-even.
    pub fn on_leg_hit(
        &mut self,
        leg_name: &str,
        qty: Decimal,
    ) -> Result<Vec<ExitAction>, ExitError> {
        let leg = self
            .legs
            .iter_mut()
            .find(|l| l.name == leg_name)
            .ok_or_else(|| ExitError::UnknownLeg(leg_name.to_owned()))?;
        leg.filled += qty;
        self.open_qty = (self.open_qty - qty).max(Decimal::ZERO);
        let mut actions = Vec::new();
        if self.break_even_after_first_leg && !self.break_even_done && self.open_qty > Decimal::ZERO
        {
            self.break_even_done = true;
            let off = pct(self.break_even_offset_pct);
            let be = if self.is_long() {
                self.filters
                    .ceil_price(self.entry_price * (Decimal::ONE + off))
            } else {
                self.filters
                    .floor_price(self.entry_price * (Decimal::ONE - off))
            };
            if self.improves(be) {
                self.stop_price = be;
                actions.push(ExitAction::MoveStop {
                    price: be,
                    why: StopMove::BreakEven,
                });
            }
        }
        Ok(actions)
    }

    /// The stop (or a manual close) took `qty` off the position.
    pub fn on_reduced(&mut self, qty: Decimal) {
        self.open_qty = (self.open_qty - qty).max(Decimal::ZERO);
    }

    /// True when nothing is held any more.
    pub fn is_closed(&self) -> bool {
        self.open_qty <= Decimal::ZERO
    }

    fn improves(&self, stop: Decimal) -> bool {
        if self.is_long() {
            stop > self.stop_price
        } else {
            stop < self.stop_price
        }
    }

    /// A new price (mark or last trade) at `now_ms`: updates the excursions, the trailing stop
    /// and the time stop.
    pub fn on_mark(&mut self, price: Decimal, now_ms: i64) -> Vec<ExitAction> {
        self.on_range(price, price, now_ms)
    }

    /// A closed candle's range at `now_ms`. The backtester calls it after checking the candle
    /// against the current levels, so a stop moved by a candle only counts from the next one.
    pub fn on_range(&mut self, high: Decimal, low: Decimal, now_ms: i64) -> Vec<ExitAction> {
        let mut actions = Vec::new();
        if self.is_closed() {
            return actions;
        }
        let (fav, adv) = if self.is_long() {
            (high, low)
        } else {
            (low, high)
        };
        if self.is_long() {
            self.best_price = self.best_price.max(fav);
            self.worst_price = self.worst_price.min(adv);
        } else {
            self.best_price = self.best_price.min(fav);
            self.worst_price = self.worst_price.max(adv);
        }
        let long = self.is_long();
        let best = self.best_price;
        let mut trail_to = None;
        let mut min_move = Decimal::ZERO;
        if let Some(t) = &mut self.trailing {
            if !t.active
                && (if long {
                    best >= t.activation_price
                } else {
                    best <= t.activation_price
                })
            {
                t.active = true;
            }
            if t.active {
                let cb = pct(t.callback_pct);
                min_move = best * cb * t.min_step;
                trail_to = Some(if long {
                    self.filters.floor_price(best * (Decimal::ONE - cb))
                } else {
                    self.filters.ceil_price(best * (Decimal::ONE + cb))
                });
            }
        }
        // Only moves of at least `min_move`: a trend re-places the stop in steps, not per tick.
        if let Some(s) =
            trail_to.filter(|s| self.improves(*s) && (*s - self.stop_price).abs() >= min_move)
        {
            self.stop_price = s;
            actions.push(ExitAction::MoveStop {
                price: s,
                why: StopMove::Trailing,
            });
        }
        if let Some(t) = self.time_stop_ms
            && now_ms >= t
            && !self.time_stop_fired
        {
            self.time_stop_fired = true;
            actions.push(ExitAction::TimeStop { qty: self.open_qty });
        }
        actions
    }

    /// The deciding model signalled `wants` (the side it would open) on a closed candle. With
    /// [`ExitConfig::close_on_flip`], a signal for the other side asks — once — for what is
    /// left to be closed at market: the quantity is returned. Otherwise `None`.
    pub fn on_signal(&mut self, wants: PositionSide) -> Option<Decimal> {
        if !self.close_on_flip || self.flip_fired || self.is_closed() || wants == self.side {
            return None;
        }
        self.flip_fired = true;
        Some(self.open_qty)
    }

    /// The next take-profit leg still resting, nearest first.
    pub fn next_leg(&self) -> Option<&Leg> {
        self.legs.iter().find(|l| !l.is_done())
    }

    /// Excursions and legs hit, for [`SymbolProfile::learn`].
    pub fn outcome(&self) -> TradeOutcome {
        let hundred = Decimal::ONE_HUNDRED;
        let (mfe, mae) = if self.is_long() {
            (
                self.best_price - self.entry_price,
                self.entry_price - self.worst_price,
            )
        } else {
            (
                self.entry_price - self.best_price,
                self.worst_price - self.entry_price,
            )
        };
        TradeOutcome {
            mfe_pct: (mfe.max(Decimal::ZERO) * hundred / self.entry_price).round_dp(6),
            mae_pct: (mae.max(Decimal::ZERO) * hundred / self.entry_price).round_dp(6),
            legs_hit: self
                .legs
                .iter()
                .filter(|l| l.filled > Decimal::ZERO)
                .count(),
            legs: self.legs.len(),
            last_target_pct: self.legs.last().map(|l| l.target_pct).unwrap_or_default(),
            stop_pct: self.stop_pct,
        }
    }

    /// The protective orders of the plan as a `ProtectPosition` command for execution: the stop
    /// and every leg still resting.
    pub fn to_protect(
        &self,
        intent_id: impl Into<String>,
        symbol: impl Into<String>,
    ) -> ProtectPosition {
        ProtectPosition {
            intent_id: intent_id.into(),
            symbol: symbol.into(),
            position_side: self.side,
            stop: Some(StopLeg {
                trigger_price: self.stop_price,
                working_type: WorkingType::MarkPrice,
            }),
            take_profits: self
                .legs
                .iter()
                .filter(|l| l.open_qty() > Decimal::ZERO)
                .map(|l| TakeProfitLeg {
                    leg: l.name.clone(),
                    trigger_price: l.price,
                    quantity: l.open_qty(),
                })
                .collect(),
            trailing: None,
        }
    }
}
