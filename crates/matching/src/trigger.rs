//! Conditional-order triggers, as Binance defines them.
//!
//! STOP / STOP_MARKET: a BUY fires when the price is ≥ the trigger, a SELL when ≤.
//! TAKE_PROFIT / TAKE_PROFIT_MARKET: the opposite. TRAILING_STOP_MARKET: once the price has
//! reached the activation price (immediately when none), it follows the best price since and
//! fires when the price retraces by the callback rate (percent) from it.

use qt_events::{Decimal, Side};
use serde::{Deserialize, Serialize};

use crate::fill::Bar;

/// The trigger direction family of a conditional order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerKind {
    /// STOP and STOP_MARKET.
    Stop,
    /// TAKE_PROFIT and TAKE_PROFIT_MARKET.
    TakeProfit,
}

/// Whether a conditional order of `kind` and `side` fires at `price`.
pub fn fires(kind: TriggerKind, side: Side, trigger: Decimal, price: Decimal) -> bool {
    match (kind, side) {
        (TriggerKind::Stop, Side::Buy) | (TriggerKind::TakeProfit, Side::Sell) => price >= trigger,
        (TriggerKind::Stop, Side::Sell) | (TriggerKind::TakeProfit, Side::Buy) => price <= trigger,
    }
}

/// Whether the order fires at some price inside the candle; returns the price it fires at
/// (the trigger itself, or the open when the candle gapped through it).
pub fn fires_in_bar(kind: TriggerKind, side: Side, trigger: Decimal, bar: &Bar) -> Option<Decimal> {
    if fires(kind, side, trigger, bar.open) {
        return Some(bar.open);
    }
    let reached = match (kind, side) {
        (TriggerKind::Stop, Side::Buy) | (TriggerKind::TakeProfit, Side::Sell) => {
            bar.high >= trigger
        }
        (TriggerKind::Stop, Side::Sell) | (TriggerKind::TakeProfit, Side::Buy) => {
            bar.low <= trigger
        }
    };
    reached.then_some(trigger)
}

/// A trailing stop's state (TRAILING_STOP_MARKET). A SELL trails a long (fires on a drop from
/// the highest price), a BUY trails a short (fires on a rise from the lowest price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailingStop {
    pub side: Side,
    /// Price that arms the stop; `None` arms it at once.
    pub activation_price: Option<Decimal>,
    /// Callback rate in percent (Binance: 0.1 to 10).
    pub callback_rate: Decimal,
    /// Best price seen since activation; `None` until armed.
    pub extreme: Option<Decimal>,
}

impl TrailingStop {
    pub fn new(side: Side, activation_price: Option<Decimal>, callback_rate: Decimal) -> Self {
        Self {
            side,
            activation_price,
            callback_rate,
            extreme: None,
        }
    }

    /// The stop price implied by the current extreme, once armed.
    pub fn stop_price(&self) -> Option<Decimal> {
        let rate = self.callback_rate / Decimal::ONE_HUNDRED;
        self.extreme.map(|e| match self.side {
            Side::Sell => e * (Decimal::ONE - rate),
            Side::Buy => e * (Decimal::ONE + rate),
        })
    }

    fn arms_at(&self, price: Decimal) -> bool {
        match (self.side, self.activation_price) {
            (_, None) => true,
            (Side::Sell, Some(a)) => price >= a,
            (Side::Buy, Some(a)) => price <= a,
        }
    }

    /// Feed one observed price; returns the price it fires at, if it fires.
    pub fn observe(&mut self, price: Decimal) -> Option<Decimal> {
        if self.extreme.is_none() {
            if !self.arms_at(price) {
                return None;
            }
            self.extreme = Some(price);
        }
        if let Some(stop) = self.stop_price() {
            let hit = match self.side {
                Side::Sell => price <= stop,
                Side::Buy => price >= stop,
            };
            if hit {
                return Some(price);
            }
        }
        self.extreme = self.extreme.map(|e| match self.side {
            Side::Sell => e.max(price),
            Side::Buy => e.min(price),
        });
        None
    }

    /// Feed one candle, conservatively: the adverse extreme is visited before the favourable
    /// one (open → adverse → favourable → close), so a candle never both arms and profits
    /// from a move it could not have seen in time. Returns the price it fires at.
    pub fn observe_bar(&mut self, bar: &Bar) -> Option<Decimal> {
        let path = match self.side {
            Side::Sell => [bar.open, bar.low, bar.high, bar.close],
            Side::Buy => [bar.open, bar.high, bar.low, bar.close],
        };
        for (i, p) in path.into_iter().enumerate() {
            if let Some(fired) = self.observe(p) {
                // The price moved continuously from the previous path point (which did not
                // fire) to this one, so it crossed the stop price; only a gap at the open
                // fills at the observed price.
                return Some(if i == 0 {
                    fired
                } else {
                    self.stop_price().map_or(fired, |s| bar.clamp(s))
                });
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn stop_market_buy_fires_at_or_above_and_sell_at_or_below() {
        assert!(fires(TriggerKind::Stop, Side::Buy, dec!(100), dec!(100)));
        assert!(!fires(TriggerKind::Stop, Side::Buy, dec!(100), dec!(99.9)));
        assert!(fires(TriggerKind::Stop, Side::Sell, dec!(100), dec!(99)));
        assert!(!fires(
            TriggerKind::Stop,
            Side::Sell,
            dec!(100),
            dec!(100.1)
        ));
    }

    #[test]
    fn take_profit_fires_the_opposite_way() {
        assert!(fires(
            TriggerKind::TakeProfit,
            Side::Sell,
            dec!(100),
            dec!(101)
        ));
        assert!(!fires(
            TriggerKind::TakeProfit,
            Side::Sell,
            dec!(100),
            dec!(99)
        ));
        assert!(fires(
            TriggerKind::TakeProfit,
            Side::Buy,
            dec!(100),
            dec!(99)
        ));
    }

    #[test]
    fn gap_through_a_stop_fires_at_the_open() {
        let bar = Bar {
            open_time: 0,
            open: dec!(90),
            high: dec!(95),
            low: dec!(85),
            close: dec!(92),
            volume: dec!(1),
        };
        assert_eq!(
            fires_in_bar(TriggerKind::Stop, Side::Sell, dec!(95), &bar),
            Some(dec!(90))
        );
        assert_eq!(
            fires_in_bar(TriggerKind::Stop, Side::Sell, dec!(86), &bar),
            Some(dec!(86))
        );
        assert_eq!(
            fires_in_bar(TriggerKind::Stop, Side::Sell, dec!(80), &bar),
            None
        );
    }

    #[test]
    fn trailing_sell_waits_for_activation_then_fires_on_callback() {
        let mut t = TrailingStop::new(Side::Sell, Some(dec!(110)), dec!(5));
        assert_eq!(t.observe(dec!(100)), None);
        assert_eq!(t.extreme, None);
        assert_eq!(t.observe(dec!(110)), None);
        assert_eq!(t.observe(dec!(120)), None);
        assert_eq!(t.stop_price(), Some(dec!(114)));
        assert_eq!(t.observe(dec!(115)), None);
        assert_eq!(t.observe(dec!(113.9)), Some(dec!(113.9)));
    }

    #[test]
    fn trailing_buy_follows_the_low() {
        let mut t = TrailingStop::new(Side::Buy, None, dec!(1));
        assert_eq!(t.observe(dec!(100)), None);
        assert_eq!(t.observe(dec!(90)), None);
        assert_eq!(t.observe(dec!(90.9)), Some(dec!(90.9)));
    }

    proptest! {
        #[test]
        fn stop_and_take_profit_are_mirror_images(t in 1i64..100_000, p in 1i64..100_000, buy in any::<bool>()) {
            let (t, p) = (Decimal::new(t, 2), Decimal::new(p, 2));
            let side = if buy { Side::Buy } else { Side::Sell };
            // A stop of one side fires exactly where a take-profit of the other side fires.
            prop_assert_eq!(fires(TriggerKind::Stop, side, t, p), fires(TriggerKind::TakeProfit, side.opposite(), t, p));
        }

        #[test]
        fn trailing_fire_price_is_inside_the_candle(
            prices in proptest::collection::vec((1i64..10_000, 0i64..500, 0u32..=100, 0u32..=100), 1..30),
            rate in 1i64..100, buy in any::<bool>())
        {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut t = TrailingStop::new(side, None, Decimal::new(rate, 1));
            for (low, span, o, c) in prices {
                let low = Decimal::new(low, 1);
                let high = low + Decimal::new(span, 1);
                let at = |pct: u32| low + (high - low) * Decimal::from(pct) / dec!(100);
                let bar = Bar { open_time: 0, open: at(o), high, low, close: at(c), volume: dec!(1) };
                if let Some(px) = t.observe_bar(&bar) {
                    prop_assert!(bar.contains(px), "{} outside [{}, {}]", px, bar.low, bar.high);
                    break;
                }
            }
        }
    }
}
